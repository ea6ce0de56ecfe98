/*
 * batpak/store.h — opening a store, appending events, lifecycle, stats, verify.
 *
 * Thread safety: a bp_store handle is safe to use from any number of threads
 * at once. Appends from several threads are group-committed: the threads
 * waiting for durability at the same moment share one write + one fdatasync.
 * Reads (batpak/read.h) never block behind an fdatasync.
 * bp_store_close() must not race with other calls on the same handle.
 */
#ifndef BATPAK_STORE_H
#define BATPAK_STORE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bp_store bp_store;
struct bp_fault; /* test hook: see src/platform/platform.h; NULL in production */

/* ------------------------------------------------------------------ open */

#define BP_OPEN_OPTIONS_VERSION 2 /* 1 (no signing_key) is still accepted */
#define BP_DEFAULT_SEGMENT_SIZE (64u << 20)
#define BP_MAX_PAYLOAD (16u << 20)

typedef struct bp_open_options {
    unsigned version;         /**< BP_OPEN_OPTIONS_VERSION */
    bool create;              /**< create the store if the directory has none (default true) */
    bool read_only;           /**< open for reading only: no writes, no tail repair */
    bool salvage;             /**< on mid-segment corruption keep the valid prefix instead of
                                   failing with BP_ECORRUPT (the rest is moved aside) */
    bool no_open_event;       /**< skip the SYSTEM_OPEN_COMPLETED event (tools, tests) */
    uint32_t segment_size;    /**< rotate segments at this size in bytes (4 KiB..2 GiB) */
    uint32_t max_payload;     /**< largest payload accepted, <= BP_MAX_PAYLOAD */
    bp_durability durability; /**< store default; BP_DURABLE unless set */
    struct bp_fault *fault;   /**< test hook for fault injection; NULL */
    const struct bp_signing_key *signing_key; /**< NULL, or sign every append and denial receipt
                                                   with this key (batpak/sign.h); its public key
                                                   joins the store's registry, DIR/keys/ */
} bp_open_options;

#define BP_OPEN_OPTIONS_INIT                                                                       \
    {                                                                                              \
        BP_OPEN_OPTIONS_VERSION, true, false, false, false, BP_DEFAULT_SEGMENT_SIZE,               \
            BP_MAX_PAYLOAD, {BP_DUR_SYNC, 0, 0}, NULL, NULL                                        \
    }

/** What open found and did. Also the payload of the SYSTEM_OPEN_COMPLETED event. */
typedef struct bp_open_report {
    bool created;             /**< the store was created by this open */
    bool checkpoint_used;     /**< index.ckpt was loaded */
    char checkpoint_note[96]; /**< why not, when it was not ("missing", "crc mismatch", ...) */
    uint32_t segments;        /**< segment files found */
    uint32_t footers_used;    /**< sealed segments loaded from their SIDX footer */
    uint64_t frames_scanned;  /**< frames parsed from segment bytes */
    uint64_t bytes_scanned;   /**< segment bytes parsed */
    uint64_t bytes_cut;       /**< torn-tail / incomplete-batch bytes removed */
    uint64_t frames_cut;      /**< complete frames removed (incomplete batches) */
    uint64_t events;          /**< events found by recovery (before this open's own event) */
    uint64_t duration_us;     /**< wall time of the open */
} bp_open_report;

/**
 * Open (and by default create) the store in directory dir.
 *
 * Takes an exclusive lock on DIR/LOCK: a second open of the same directory, by
 * this or another process, fails with BP_ELOCKED naming the directory and the
 * holder's pid. Loads index.ckpt when valid, scans only what it does not cover,
 * cuts a torn tail or an incomplete batch at the end of the newest segment, and
 * refuses corruption elsewhere with BP_ECORRUPT naming segment and offset.
 * A writable open appends one SYSTEM_OPEN_COMPLETED event at
 * batpak:store / batpak:lifecycle (unless opts->no_open_event).
 *
 * out: receives the handle; set to NULL on error. opts may be NULL (defaults).
 * Errors: BP_EINVAL, BP_ENOTFOUND (no store and !create), BP_ELOCKED, BP_EVERSION,
 *         BP_ECORRUPT, BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_store_open(bp_store **out, const char *dir, const bp_open_options *opts);

/**
 * Flush, fdatasync, write the index checkpoint, release the lock, free the handle.
 * Accepts NULL. Returns the first error met (the handle is freed regardless).
 * No other call on this handle may run concurrently or follow.
 */
BP_API bp_status bp_store_close(bp_store *s);

/** Make every appended event durable now (one fdatasync). Fail-stopped: the original error. */
BP_API bp_status bp_store_sync(bp_store *s);

/** The report of the open that produced this handle. */
BP_API void bp_store_open_report(const bp_store *s, bp_open_report *out);

/** The store's 16-byte identity, from DIR/STORE. */
BP_API void bp_store_uuid(const bp_store *s, uint8_t out[16]);

/** The directory this store was opened from (as given). */
BP_API const char *bp_store_dir(const bp_store *s);

/* ---------------------------------------------------------------- append */

/**
 * The append receipt: what one append committed, and what it guarantees.
 * durability says what was guaranteed on return. When the store was opened
 * with a signing key (bp_open_options.signing_key), is_signed is true and
 * signature is an Ed25519 signature over the receipt's canonical encoding
 * (doc/FORMAT.md "Signed receipts"; bp_receipt_signing_bytes) by the key
 * whose id (BLAKE3 of the public key) is key_id; check it with
 * bp_store_verify_receipt or, offline, bp_verify_receipt (batpak/sign.h).
 */
typedef struct bp_receipt {
    bp_id event_id;
    uint64_t global_seq; /**< dense, starts at 1 */
    uint64_t clock;      /**< per-entity, 1, 2, 3, ... no gaps */
    uint64_t hlc;        /**< BP_HLC_WALL_MS / BP_HLC_LOGICAL */
    bp_hash event_hash;
    bp_durability_mode durability; /**< BP_DUR_SYNC: fdatasynced before return.
                                        BP_DUR_EVERY: written to the OS; a sync follows within
                                        the mode's n events / ms (a background thread keeps
                                        the ms bound when appends stop).
                                        BP_DUR_NONE: written to the OS only, synced at the next
                                        bp_store_sync/close. Both survive a process crash, not a
                                        power loss, until synced. */
    bool replayed;                 /**< idempotency key matched: this is the original receipt and
                                        nothing was written */
    char entity[BP_COORD_MAX + 1]; /**< the event's coordinate, NUL-terminated */
    char scope[BP_COORD_MAX + 1];
    uint16_t kind;
    bp_hash prev_hash;    /**< hash of the entity's previous event (zeros for its first) */
    uint8_t store_id[16]; /**< the store's identity (bp_store_uuid) */
    bool is_signed;
    uint8_t key_id[32];    /**< BLAKE3 of the signing public key (when is_signed) */
    uint8_t signature[64]; /**< Ed25519 over bp_receipt_signing_bytes (when is_signed) */
} bp_receipt;

#define BP_APPEND_OPTIONS_VERSION 2 /* 1 (no schema_version) is still accepted */
#define BP_IDEMPOTENCY_KEY_MAX 255

typedef struct bp_append_options {
    unsigned version;            /**< BP_APPEND_OPTIONS_VERSION */
    bool has_expected_clock;     /**< enable CAS */
    uint64_t expected_clock;     /**< clock of the entity's current head; 0 = no events yet */
    const char *idempotency_key; /**< NULL or 1..255 bytes; survives restarts */
    const bp_id *correlation_id; /**< NULL = the event's own id */
    const bp_id *causation_id;   /**< NULL = none */
    bp_durability durability;    /**< mode BP_DUR_DEFAULT = the store's */
    uint8_t schema_version;      /**< the payload's schema version, kept in the event's flags
                                      (batpak/typed.h); 0 = not stated. Typed appends set it. */
} bp_append_options;

#define BP_APPEND_OPTIONS_INIT                                                                     \
    { BP_APPEND_OPTIONS_VERSION, false, 0, NULL, NULL, NULL, {0, 0, 0}, 0 }

/**
 * Append one event at (entity, scope) with an application kind and a payload
 * (MessagePack bytes by convention; the store does not interpret them).
 * receipt may be NULL. Uses the store's durability.
 * Errors: BP_EINVAL (coordinate, reserved prefix, kind), BP_ETOOBIG, BP_EREADONLY,
 *         BP_EIO (this append's I/O failed, or an earlier one fail-stopped the store:
 *         every later write returns that error until a reopen; bp_store_stats().failed).
 * Nothing is written on error.
 */
BP_API bp_status bp_append(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                           uint16_t kind, const void *payload, size_t len);

/**
 * bp_append with options: CAS (BP_ECONFLICT if the entity's head clock differs,
 * nothing written), idempotency key (an already committed key returns the
 * original receipt with replayed = true and writes nothing; the same key for a
 * different entity is BP_ECONFLICT), correlation/causation, durability override.
 */
BP_API bp_status bp_append_ex(bp_store *s, bp_receipt *receipt, const char *entity,
                              const char *scope, uint16_t kind, const void *payload, size_t len,
                              const bp_append_options *opts);

/** One item of an atomic batch. opts may be NULL; opts->durability is ignored. */
typedef struct bp_batch_item {
    const char *entity;
    const char *scope;
    uint16_t kind;
    const void *payload;
    size_t len;
    const bp_append_options *opts;
} bp_batch_item;

/** Largest number of events in one batch. */
#define BP_BATCH_MAX 65535u

/**
 * Append n events (any entities) atomically: either all become visible and
 * durable (the batch is always fdatasynced before it becomes visible), or none.
 * n == 0 writes nothing and returns BP_OK.
 * receipts: NULL or an array of n. CAS expectations are checked against the
 * state including earlier items of the same batch. Idempotency: if every item
 * carries a key and all were committed, the original receipts are returned
 * (replayed); if only some were, BP_ECONFLICT. On any error nothing is written.
 */
BP_API bp_status bp_append_batch(bp_store *s, bp_receipt *receipts, const bp_batch_item *items,
                                 size_t n);

/* ----------------------------------------------------------------- stats */

typedef struct bp_stats {
    uint64_t events; /**< published events */
    uint64_t entities;
    uint64_t scopes;
    uint32_t segments;
    uint64_t bytes_on_disk; /**< segments + checkpoint + STORE */
    uint64_t index_bytes;   /**< memory held by the in-memory index */
    uint64_t fsyncs;        /**< fdatasync/fsync calls made by this handle */
    uint64_t appends;       /**< append calls committed by this handle */
    uint64_t write_p50_us;  /**< append latency percentiles, this handle */
    uint64_t write_p99_us;
    uint64_t write_max_us;
    bool failed; /**< fail-stopped by an I/O error */
    bool read_only;
} bp_stats;

BP_API bp_status bp_store_stats(bp_store *s, bp_stats *out);

/* ---------------------------------------------------------------- verify */

typedef struct bp_verify_report {
    uint32_t segments;
    uint64_t frames;
    uint64_t events;
    uint64_t entities;
    uint64_t problems;       /**< 0 means clean */
    char first_problem[256]; /**< what and where, empty when clean */
} bp_verify_report;

/**
 * Re-read every segment: frame CRCs, footers, every event hash, every
 * per-entity chain (prev_hash, gap-free clocks), the dense global sequence.
 * Returns BP_OK when clean, BP_ECORRUPT when problems were found (report filled
 * either way), other errors for I/O failures.
 */
BP_API bp_status bp_store_verify(bp_store *s, bp_verify_report *out);

/** Progress of a long operation: done out of total units (bytes for verify). */
typedef void (*bp_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/** bp_store_verify that calls progress(ctx, bytes_checked, bytes_total) after each
 * segment (and once with 0 before the first); progress may be NULL. */
BP_API bp_status bp_store_verify_ex(bp_store *s, bp_verify_report *out, bp_progress_fn progress,
                                    void *ctx);

#ifdef __cplusplus
}
#endif
#endif
