/** @file
 * batpak/common.h — status codes, errors, kinds, ids and durability modes.
 *
 * Conventions used by every batpak header (doc/API.md "The API's rules" states them all):
 *  - The receiver (the handle) comes first, then the outputs, the inputs, callbacks with
 *    their ctx, and an options struct last (NULL: the defaults).
 *  - Every function returns bp_status (BP_OK == 0, errors negative) unless it
 *    says otherwise. A wait that runs out returns BP_ETIMEDOUT; BP_DONE means finished.
 *    An output too small for what it must hold is BP_ETOOBIG, with the size needed.
 *  - On error, bp_last_error() gives a human-readable message for the calling
 *    thread with context (path, entity, offset). The library never prints,
 *    aborts or exits.
 *  - Structs the caller allocates start with struct_size, set by their BP_X_INIT macro
 *    (bp_verify_options o = BP_VERIFY_OPTIONS_INIT;), so that fields can be added later.
 *  - Handles are opaque; their _free/_close functions accept NULL.
 */
#ifndef BATPAK_COMMON_H
#define BATPAK_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @def BP_API
 * Marks a public function. While the library itself is built (BP_BUILDING) it gives the
 * symbol default visibility (the library is compiled with hidden visibility); for users of
 * the headers it is empty.
 */
#if defined(BP_BUILDING)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

/**
 * @def BP_PRINTF
 * Marks a printf-style function (format string at argument f, its arguments from a), so
 * that GCC and Clang check the calls; empty for other compilers.
 */
#if defined(__GNUC__)
#define BP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BP_PRINTF(f, a)
#endif

/** Major version of these headers (bp_version() gives the linked library's). */
#define BP_VERSION_MAJOR 1
/** Minor version of these headers. */
#define BP_VERSION_MINOR 4
/** Patch version of these headers. */
#define BP_VERSION_PATCH 0
/** Version of these headers as "MAJOR.MINOR.PATCH" text. */
#define BP_VERSION_STRING "1.4.0"

/** Status codes. 0 is success, every error is negative. */
typedef enum bp_status {
    BP_OK = 0,         /**< success */
    BP_DONE = 1,       /**< iteration finished (not an error) */
    BP_UNCHANGED = 2,  /**< nothing to do: the entity has not moved (not an error) */
    BP_EINVAL = -1,    /**< invalid argument: coordinate, kind, option, JSON... */
    BP_ENOTFOUND = -2, /**< no such event, entity or store */
    BP_ECONFLICT = -3, /**< CAS expectation failed, or idempotency key conflict */
    BP_ECORRUPT = -4,  /**< on-disk data failed a CRC/hash/structure check */
    BP_EIO = -5,       /**< an I/O call failed; the store is now fail-stopped */
    BP_ELOCKED = -6,   /**< another handle holds the store directory lock */
    BP_EVERSION = -7,  /**< unknown on-disk format version */
    BP_ENOMEM = -8,    /**< allocation failed */
    BP_EBUSY = -9,     /**< queue full (try_ variants) */
    BP_ETOOBIG = -10, /**< payload or batch larger than the configured limit, or an output buffer or
                         array too small (the size needed is returned) */
    BP_EREADONLY = -11, /**< write on a read-only handle */
    /* -12 is unused: a fail-stopped store keeps returning the error that stopped it */
    BP_EDENIED = -13,    /**< a gate denied the proposal */
    BP_EEXIST = -14,     /**< already exists / already registered */
    BP_ESIGNATURE = -15, /**< a receipt's signature does not verify */
    BP_ETIMEDOUT = -16,  /**< a wait ended before what it waited for happened */
    BP_ECANCELED = -17,  /**< the append belonged to a visibility fence that was cancelled */
    BP_ENOTSUP = -18     /**< not compiled into this build (replication without libnats) */
} bp_status;

/** Short static description of a status code ("CAS conflict", ...). Never NULL. */
BP_API const char *bp_strerror(int status);

/**
 * The calling thread's message for its most recent failed call: what, where, why.
 * Valid until the next batpak call on this thread. Never NULL ("" if none).
 */
BP_API const char *bp_last_error(void);

/**
 * Set the calling thread's error message (printf-style) and return status:
 * for callbacks (a projection's apply, an upcaster) to say why they failed.
 * The library adds where (projection, entity, clock) when it reports it.
 */
BP_API bp_status bp_set_error(bp_status status, const char *fmt, ...) BP_PRINTF(2, 3);

/** Library version string, e.g. "1.0.0". */
BP_API const char *bp_version(void);

/** Free memory the library handed out as a string or buffer (bp_receipt_to_json,
 * bp_store_prometheus, bp_event_json...). Accepts NULL. */
BP_API void bp_free(void *p);

/* ---------------------------------------------------------------- kinds */

/**
 * A kind is (category << 12) | type_id. Categories 0x1..0xF are for
 * applications, except 0xD (reserved for effects) and 0x0 (library system kinds).
 */
#define BP_KIND(category, type_id) ((uint16_t)((((category)&0xF) << 12) | ((type_id)&0xFFF)))
/** The category of a kind (0x0..0xF, its top 4 bits). */
#define BP_KIND_CATEGORY(kind) ((unsigned)(((kind) >> 12) & 0xF))
/** The type id of a kind (0x000..0xFFF, its low 12 bits). */
#define BP_KIND_TYPE(kind) ((unsigned)((kind)&0xFFF))
/** Category of the library's system kinds (BP_KIND_SYSTEM_*); applications may not append it. */
#define BP_CATEGORY_SYSTEM 0x0
/** Category reserved for effects; applications may not append it. */
#define BP_CATEGORY_EFFECT 0xD

/** System kinds (category 0), written only by the library. This one is the event a writable
 * bp_store_open appends at batpak:store / batpak:lifecycle; its payload encodes the open
 * report (bp_store_open_report; bp_open_options.no_open_event skips the event). */
#define BP_KIND_SYSTEM_OPEN_COMPLETED ((uint16_t)0x0001)
/** System kind of a denied proposal persisted by bp_append_denial, at the proposal's
 * coordinate; decode its payload with bp_denial_record_decode. */
#define BP_KIND_SYSTEM_DENIAL ((uint16_t)0x0002)
/** System kind of the mark bp_tombstone appends (empty payload); bp_compact with
 * bp_compact_options.tombstoned drops the entity's events up to its last one. */
#define BP_KIND_SYSTEM_TOMBSTONE ((uint16_t)0x0003)
/** System kind of a payload type descriptor recorded in the store (bp_schema_record), at
 * batpak:schema / batpak:schema (doc/FORMAT.md "Stored schemas"). Since 1.4. */
#define BP_KIND_SYSTEM_SCHEMA ((uint16_t)0x0004)

/** True when an application may append this kind (category 1..F except D, type any). */
BP_API bool bp_kind_is_application(uint16_t kind);

/* ---------------------------------------------------------- coordinates */

/** Entity and scope are UTF-8, 1..255 bytes, no NUL. */
#define BP_COORD_MAX 255
/** Entities starting with this prefix belong to the library. */
#define BP_RESERVED_PREFIX "batpak:"

/**
 * Validate an entity or scope string. field names it in the error ("entity").
 * Returns BP_OK or BP_EINVAL (message names the field and the reason).
 */
BP_API bp_status bp_coord_validate(const char *field, const char *s);

/* ------------------------------------------------------------------ ids */

/** UUIDv7 event id. */
typedef struct bp_id {
    uint8_t b[16]; /**< the 16 bytes in RFC 9562 order: b[0..5] are the big-endian Unix ms */
} bp_id;

/** BLAKE3-256 digest. */
typedef struct bp_hash {
    uint8_t b[32]; /**< the 32 digest bytes */
} bp_hash;

/** Formats id as 36-char canonical UUID text + NUL into out (37 bytes). */
BP_API void bp_id_format(const bp_id *id, char out[37]);
/** Parses canonical UUID text (with or without dashes). BP_EINVAL if malformed. */
BP_API bp_status bp_id_parse(bp_id *out, const char *text);
/** Lower-case hex of a hash + NUL (65 bytes). */
BP_API void bp_hash_format(const bp_hash *h, char out[65]);
/** Milliseconds since the Unix epoch stored in a UUIDv7. */
BP_API uint64_t bp_id_time_ms(const bp_id *id);

/** HLC value: wall milliseconds in the high 48 bits, logical counter in the low 16. */
#define BP_HLC_WALL_MS(hlc) ((uint64_t)(hlc) >> 16)
/** The logical counter of an HLC value (its low 16 bits). */
#define BP_HLC_LOGICAL(hlc) ((uint16_t)((hlc)&0xFFFF))

/* ----------------------------------------------------------- durability */

/** When an append's receipt is returned, relative to write() and fdatasync. */
typedef enum bp_durability_mode {
    BP_DUR_DEFAULT = 0, /**< per-append: use the store's mode */
    BP_DUR_SYNC = 1,    /**< receipt only after fdatasync (group-committed) */
    BP_DUR_EVERY = 2,   /**< receipt after write(); fdatasync every N events or M ms */
    BP_DUR_NONE = 3     /**< receipt after write(); fdatasync only on bp_store_sync/close */
} bp_durability_mode;

/**
 * A durability setting: a mode and, for BP_DUR_EVERY, its bounds (whichever is reached
 * first triggers the sync). Build one with BP_DURABLE, BP_DURABLE_EVERY or BP_NO_SYNC.
 */
typedef struct bp_durability {
    bp_durability_mode mode; /**< the mode; the two bounds are read only for BP_DUR_EVERY */
    uint32_t every_events;   /**< BP_DUR_EVERY: sync when this many events are unsynced (0 = off) */
    uint32_t every_ms;       /**< BP_DUR_EVERY: sync when the oldest unsynced event is this old */
} bp_durability;

/** BP_DUR_SYNC: every receipt waits for fdatasync (the default of a store). */
#define BP_DURABLE ((bp_durability){BP_DUR_SYNC, 0, 0})
/** BP_DUR_EVERY: sync once n_events events are unsynced or the oldest is ms milliseconds old. */
#define BP_DURABLE_EVERY(n_events, ms) ((bp_durability){BP_DUR_EVERY, (n_events), (ms)})
/** BP_DUR_NONE: sync only in bp_store_sync and bp_store_close. */
#define BP_NO_SYNC ((bp_durability){BP_DUR_NONE, 0, 0})

#ifdef __cplusplus
}
#endif
#endif
