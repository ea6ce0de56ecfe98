/*
 * batpak/common.h — status codes, errors, kinds, ids and durability modes.
 *
 * Conventions used by every batpak header:
 *  - Every function returns bp_status (BP_OK == 0, errors negative) unless it
 *    says otherwise; outputs come through the first parameter(s).
 *  - On error, bp_last_error() gives a human-readable message for the calling
 *    thread with context (path, entity, offset). The library never prints,
 *    aborts or exits.
 *  - Options structs are versioned and initialised with a macro
 *    (bp_open_options o = BP_OPEN_OPTIONS_INIT;) so fields can be added later.
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

#if defined(BP_BUILDING)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 1
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.1.0"

/** Status codes. 0 is success, every error is negative. */
typedef enum bp_status {
    BP_OK = 0,
    BP_DONE = 1,        /**< iteration finished (not an error) */
    BP_UNCHANGED = 2,   /**< nothing to do: the entity has not moved (not an error) */
    BP_EINVAL = -1,     /**< invalid argument: coordinate, kind, option, JSON... */
    BP_ENOTFOUND = -2,  /**< no such event, entity or store */
    BP_ECONFLICT = -3,  /**< CAS expectation failed, or idempotency key conflict */
    BP_ECORRUPT = -4,   /**< on-disk data failed a CRC/hash/structure check */
    BP_EIO = -5,        /**< an I/O call failed; the store is now fail-stopped */
    BP_ELOCKED = -6,    /**< another handle holds the store directory lock */
    BP_EVERSION = -7,   /**< unknown on-disk format version */
    BP_ENOMEM = -8,     /**< allocation failed */
    BP_EBUSY = -9,      /**< queue full (try_ variants) */
    BP_ETOOBIG = -10,   /**< payload or batch larger than the configured limit */
    BP_EREADONLY = -11, /**< write on a read-only handle */
    /* -12 is unused: a fail-stopped store keeps returning the error that stopped it */
    BP_EDENIED = -13,    /**< a gate denied the proposal */
    BP_EEXIST = -14,     /**< already exists / already registered */
    BP_ESIGNATURE = -15, /**< a receipt's signature does not verify */
    BP_ETIMEDOUT = -16,  /**< a wait ended before what it waited for happened */
    BP_ECANCELED = -17   /**< the append belonged to a visibility fence that was cancelled */
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
BP_API bp_status bp_set_error(bp_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Library version string, e.g. "0.1.0". */
BP_API const char *bp_version(void);

/* ---------------------------------------------------------------- kinds */

/**
 * A kind is (category << 12) | type_id. Categories 0x1..0xF are for
 * applications, except 0xD (reserved for effects) and 0x0 (library system kinds).
 */
#define BP_KIND(category, type_id) ((uint16_t)((((category)&0xF) << 12) | ((type_id)&0xFFF)))
#define BP_KIND_CATEGORY(kind) ((unsigned)(((kind) >> 12) & 0xF))
#define BP_KIND_TYPE(kind) ((unsigned)((kind)&0xFFF))
#define BP_CATEGORY_SYSTEM 0x0
#define BP_CATEGORY_EFFECT 0xD

/** System kinds (category 0), written only by the library. */
#define BP_KIND_SYSTEM_OPEN_COMPLETED ((uint16_t)0x0001)
#define BP_KIND_SYSTEM_DENIAL ((uint16_t)0x0002)
#define BP_KIND_SYSTEM_TOMBSTONE ((uint16_t)0x0003)

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

typedef struct bp_id {
    uint8_t b[16];
} bp_id; /**< UUIDv7 event id */

typedef struct bp_hash {
    uint8_t b[32];
} bp_hash; /**< BLAKE3-256 digest */

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
#define BP_HLC_LOGICAL(hlc) ((uint16_t)((hlc)&0xFFFF))

/* ----------------------------------------------------------- durability */

typedef enum bp_durability_mode {
    BP_DUR_DEFAULT = 0, /**< per-append: use the store's mode */
    BP_DUR_SYNC = 1,    /**< receipt only after fdatasync (group-committed) */
    BP_DUR_EVERY = 2,   /**< receipt after write(); fdatasync every N events or M ms */
    BP_DUR_NONE = 3     /**< receipt after write(); fdatasync only on bp_store_sync/close */
} bp_durability_mode;

typedef struct bp_durability {
    bp_durability_mode mode;
    uint32_t every_events; /**< BP_DUR_EVERY: sync when this many events are unsynced (0 = off) */
    uint32_t every_ms;     /**< BP_DUR_EVERY: sync when the oldest unsynced event is this old */
} bp_durability;

#define BP_DURABLE ((bp_durability){BP_DUR_SYNC, 0, 0})
#define BP_DURABLE_EVERY(n_events, ms) ((bp_durability){BP_DUR_EVERY, (n_events), (ms)})
#define BP_NO_SYNC ((bp_durability){BP_DUR_NONE, 0, 0})

#ifdef __cplusplus
}
#endif
#endif
