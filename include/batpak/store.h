/** @file
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

/**
 * An open store: an opaque handle made by bp_store_open and freed by bp_store_close.
 * One handle may be shared by any number of threads (see the file comment).
 */
typedef struct bp_store bp_store;
struct bp_store_open_report;

/**
 * An open observer (bp_open_options.on_open): called once by a successful bp_store_open,
 * on the opening thread, just before it returns, with the new handle and what the open
 * found and did (the same report as bp_store_open_report and the SYSTEM_OPEN_COMPLETED
 * event). For programs that export the report themselves (logs, metrics). The handle may
 * be read (stats, diagnostics, reads) but must not be closed from inside the call.
 */
typedef void (*bp_open_observer)(void *ctx, bp_store *s, const struct bp_store_open_report *report);

/* ------------------------------------------------------------------ open */

/** Default bp_open_options.segment_size: 64 MiB. */
#define BP_DEFAULT_SEGMENT_SIZE (64u << 20)
/** Largest payload any store accepts (16 MiB); the default bp_open_options.max_payload. */
#define BP_MAX_PAYLOAD (16u << 20)

/** Options of bp_store_open. Start from BP_OPEN_OPTIONS_INIT and change what you need. */
typedef struct bp_open_options {
    uint32_t struct_size;     /**< sizeof(bp_open_options), set by BP_OPEN_OPTIONS_INIT */
    bool create;              /**< create the store if the directory has none (default true) */
    bool read_only;           /**< open for reading only: no lock, nothing written; beside a
                                   live writer in another process, it shows what the writer
                                   published and follows it (bp_store_refresh) */
    bool salvage;             /**< on mid-segment corruption keep the valid prefix instead of
                                   failing with BP_ECORRUPT (the rest is moved aside) */
    bool no_open_event;       /**< skip the SYSTEM_OPEN_COMPLETED event (tools, tests); an open
                                   that accepts a loss (accept_loss) writes it all the same */
    uint32_t segment_size;    /**< rotate segments at this size in bytes (4 KiB..2 GiB) */
    uint32_t max_payload;     /**< largest payload accepted, <= BP_MAX_PAYLOAD */
    bp_durability durability; /**< store default; BP_DURABLE unless set */
    const struct bp_signing_key *signing_key; /**< NULL, or sign every append and denial receipt
                                                   with this key (batpak/sign.h); its public key
                                                   joins the store's registry, DIR/keys/ */
    uint32_t submit_queue;    /**< tickets bp_submit may hold waiting to be committed
                                   (0: BP_SUBMIT_QUEUE_DEFAULT; at most BP_SUBMIT_QUEUE_MAX) */
    bool seal_payloads;       /**< turn on crypto-shredding for this store, for good:
                                   every application payload written from now on, by any
                                   later open too, is sealed with its entity's data key
                                   (DIR/dkeys/; see bp_forget) */
    bp_open_observer on_open; /**< NULL, or called with the open report */
    void *on_open_ctx;        /**< passed to on_open */
    bool accept_loss;         /**< open even though data the store's own records
                                   say it held is gone (a removed or shortened segment, see
                                   bp_store_open); the open report and the SYSTEM_OPEN_COMPLETED
                                   event record what was lost. Never needed after a crash */
} bp_open_options;

/** The defaults: create if missing, writable, BP_DURABLE, BP_DEFAULT_SEGMENT_SIZE segments,
 * BP_MAX_PAYLOAD payloads, no signing key, default submit queue, payloads not
 * sealed, no open observer, a loss of data refused. */
#define BP_OPEN_OPTIONS_INIT                                                                       \
    {                                                                                              \
        (uint32_t)sizeof(bp_open_options), true, false, false, false, BP_DEFAULT_SEGMENT_SIZE,     \
            BP_MAX_PAYLOAD, {BP_DUR_SYNC, 0, 0}, NULL, 0, false, NULL, NULL, false                 \
    }

/** What open found and did. Also the payload of the SYSTEM_OPEN_COMPLETED event. */
typedef struct bp_store_open_report {
    uint32_t struct_size;     /**< sizeof(bp_store_open_report), set by BP_STORE_OPEN_REPORT_INIT */
    bool created;             /**< the store was created by this open */
    bool checkpoint_used;     /**< index.ckpt was loaded */
    char checkpoint_note[96]; /**< why not, when it was not ("missing", "crc mismatch", ...) */
    uint32_t segments;        /**< segment files found */
    uint32_t footers_used;    /**< sealed segments loaded from their SIDX footer */
    uint64_t frames_scanned;  /**< frames parsed from segment bytes */
    uint64_t bytes_scanned;   /**< segment bytes parsed */
    uint64_t bytes_cut;       /**< torn-tail / incomplete-batch bytes removed */
    uint64_t frames_cut;      /**< complete frames removed (incomplete batches, and the frames
                                   after the damage a salvage moved aside) */
    uint64_t events;          /**< events found by recovery (before this open's own event) */
    uint64_t duration_us;     /**< wall time of the open */
    /* What an open with accept_loss accepted as lost, or a salvage moved aside (the frames
     * that still check: a damaged frame has no seq to count) (all zero otherwise). */
    uint32_t segments_lost;  /**< segment files missing, emptied or shortened (and, past a gap,
                                  moved to DIR/quarantine/) */
    uint64_t events_lost;    /**< acknowledged events the store's records list and the files
                                  no longer hold (global_seqs first_lost_seq onwards) */
    uint64_t first_lost_seq; /**< the first of them; 0 when none is known */
    char loss_note[160];     /**< what was lost and how it was found; "" when nothing */
} bp_store_open_report;

/** A bp_store_open_report to fill: struct_size set, the rest zero. */
#define BP_STORE_OPEN_REPORT_INIT                                                                  \
    {                                                                                              \
        (uint32_t)sizeof(bp_store_open_report), false, false, {0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   \
            0, {                                                                                   \
            0                                                                                      \
        }                                                                                          \
    }

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
 * Lost data is refused, never dropped: when the store's own records show that data it
 * held is gone, the open (read-only too) fails with BP_ECORRUPT naming what is missing and
 * writes nothing. Those records are index.ckpt (the segment, offset and last global_seq a
 * clean close covered: a segment it covers that is missing or shorter than it says, as
 * with an older backup of the segments next to a newer index.ckpt), DIR/ANCHORS (the
 * segments a compaction wrote), the numbering of the segment files (a gap), DIR/STORE
 * (missing while segments exist) and DIR/dkeys/ (missing while payloads are sealed). A crash never
 * causes such a refusal (a segment whose header never reached the disk is set aside as before).
 * With opts->accept_loss the open goes on with what the files hold and records the loss
 * (segments_lost, events_lost, first_lost_seq, loss_note in the report and the
 * SYSTEM_OPEN_COMPLETED event); a writable open then writes a new index.ckpt at once, so later
 * opens need no flag. Past a gap in the numbering the later segments are moved to DIR/quarantine/.
 * A missing first segment or STORE file cannot be accepted (the rest chains from it): restore it.
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

/** The report of the open that produced this handle. BP_EINVAL when an argument is NULL or
 * out->struct_size is not BP_STORE_OPEN_REPORT_INIT's. */
BP_API bp_status bp_store_open_report_get(const bp_store *s, bp_store_open_report *out);

/**
 * A read-only handle: take in the events the store's writer (in another process) published
 * since this handle opened or last refreshed, and publish them to this handle's readers,
 * cursors and subscriptions. It reads only up to the writer's mark in DIR/LIVE: whole batches,
 * and under BP_DURABLE only synced events (doc/GUIDE.md "Many processes"). Cursors and
 * workers of a read-only handle refresh by themselves while they wait (a follower thread,
 * woken by the writer). A writable handle: nothing to do.
 * published: when not NULL, receives the highest global_seq this handle now shows.
 * Returns BP_OK with nothing new when no writer of this library version runs.
 * After a compaction by the writer, or under a new writer, it makes the handle's view anew
 * from the files (the replaced ones are let go; held events keep theirs).
 * Errors: BP_EINVAL (s NULL); BP_ECORRUPT naming the segment and offset when the files no
 * longer continue what this handle shows (a writer that lost unsynced events in a power
 * loss): open the store again; BP_EIO, BP_ENOMEM. Since 1.3.
 */
BP_API bp_status bp_store_refresh(bp_store *s, uint64_t *published);

/**
 * The open report of the writer that holds the store now, as a read-only handle in another
 * process sees it (DIR/LIVE); a writable handle's own (bp_store_open_report_get).
 * Errors: BP_EINVAL (NULL argument, or out->struct_size not BP_STORE_OPEN_REPORT_INIT's),
 * BP_ENOTFOUND (no writer holds the store, or one of an older version, or it is still
 * opening). Since 1.3.
 */
BP_API bp_status bp_store_writer_report(bp_store *s, bp_store_open_report *out);

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
 * Make one with BP_RECEIPT_INIT (struct_size set): any other struct_size is BP_EINVAL and
 * nothing is written. An array given whole (bp_append_batch) needs only element 0's, its
 * stride; the library sets struct_size in every receipt it fills.
 */
typedef struct bp_receipt {
    uint32_t struct_size; /**< sizeof(bp_receipt), set by BP_RECEIPT_INIT */
    bp_id event_id;       /**< the event's id (UUIDv7) */
    uint64_t global_seq;  /**< starts at 1, dense (compaction leaves holes below its upto) */
    uint64_t clock;       /**< per-entity, 1, 2, 3, ... no gaps */
    uint64_t hlc;         /**< BP_HLC_WALL_MS / BP_HLC_LOGICAL */
    bp_hash event_hash;   /**< BLAKE3 of the event (doc/FORMAT.md "Event hash") */
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
    char scope[BP_COORD_MAX + 1];  /**< the event's scope, NUL-terminated */
    uint16_t kind;                 /**< the event's kind */
    bp_hash prev_hash;             /**< hash of the entity's previous event (zeros for its first) */
    uint8_t store_id[16];          /**< the store's identity (bp_store_uuid) */
    bool is_signed;                /**< key_id and signature are set (the store signs receipts) */
    uint8_t key_id[32];            /**< BLAKE3 of the signing public key (when is_signed) */
    uint8_t signature[64];         /**< Ed25519 over bp_receipt_signing_bytes (when is_signed) */
} bp_receipt;

/** A bp_receipt to fill: struct_size set, the rest zero. */
#define BP_RECEIPT_INIT                                                                            \
    {                                                                                              \
        (uint32_t)sizeof(bp_receipt), {{0}}, 0, 0, 0, {{0}}, BP_DUR_DEFAULT, false, {0}, {0}, 0,   \
            {{0}}, {0}, false, {0}, {                                                              \
            0                                                                                      \
        }                                                                                          \
    }

/** Longest idempotency key, in bytes. */
#define BP_IDEMPOTENCY_KEY_MAX 255

/**
 * Options of one append (bp_append_ex, and the calls that take its arguments). Start from
 * BP_APPEND_OPTIONS_INIT. Pointers are read during the call only.
 */
typedef struct bp_append_options {
    uint32_t struct_size;        /**< sizeof(bp_append_options), set by BP_APPEND_OPTIONS_INIT */
    bool has_expected_clock;     /**< enable CAS */
    uint64_t expected_clock;     /**< clock of the entity's current head; 0 = no events yet */
    const char *idempotency_key; /**< NULL or 1..255 bytes; survives restarts */
    const bp_id *correlation_id; /**< NULL = the event's own id */
    const bp_id *causation_id;   /**< NULL = none */
    bp_durability durability;    /**< mode BP_DUR_DEFAULT = the store's */
    uint8_t schema_version;      /**< the payload's schema version, kept in the event's flags
                                      (batpak/typed.h); 0 = not stated. Typed appends set it. */
} bp_append_options;

/** The defaults: no CAS, no idempotency key, no correlation or causation id, the store's
 * durability, schema version not stated. */
#define BP_APPEND_OPTIONS_INIT                                                                     \
    { (uint32_t)sizeof(bp_append_options), false, 0, NULL, NULL, NULL, {BP_DUR_DEFAULT, 0, 0}, 0 }

/**
 * Append one event at (entity, scope) with an application kind and a payload
 * (MessagePack bytes by convention; the store does not interpret them).
 * receipt may be NULL. Uses the store's durability.
 * Errors: BP_EINVAL (coordinate, reserved prefix, kind), BP_ETOOBIG, BP_EREADONLY,
 *         BP_EIO (this append's I/O failed, or an earlier one fail-stopped the store:
 *         every later write returns that error until a reopen; bp_store_stats_get().failed).
 * Nothing is written on error.
 */
BP_API bp_status bp_append(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                           uint16_t kind, const void *payload, size_t len);

/**
 * bp_append with options: CAS (BP_ECONFLICT if the entity's head clock differs,
 * nothing written; see "Optimistic concurrency" below), idempotency key (an
 * already committed key returns the original receipt with replayed = true and
 * writes nothing; the same key for a different entity is BP_ECONFLICT),
 * correlation/causation, durability override.
 */
BP_API bp_status bp_append_ex(bp_store *s, bp_receipt *receipt, const char *entity,
                              const char *scope, uint16_t kind, const void *payload, size_t len,
                              const bp_append_options *opts);

/*
 * Optimistic concurrency. "The head" of an entity means one thing for writers: its last
 * event written to the store. bp_entity_head returns it, waiting (for one group commit's
 * fdatasync at most) while an append to the entity already written is still waiting for its
 * sync, so that the head it returns is also what bp_stream and every other read shows (reads
 * see published events only: an event is published once written and, for a durable append,
 * synced). A CAS append (has_expected_clock) fails with BP_ECONFLICT only when another append
 * to the entity was written after the head the caller read, never because an earlier one is
 * still being synced; bp_evaluate reads the head the same way, and bp_commit appends with it
 * as the expectation.
 *
 * Fairness: a thread whose single CAS append to an entity conflicted holds the entity's turn
 * until its next successful append to the store (to any entity), or until it has not acted
 * on that entity (read the head, tried an append) for 50 ms. While another thread holds the
 * turn, bp_entity_head and CAS appends to that entity from a thread that holds none wait for
 * it. So each writer that lost a race commits before any other writer commits twice, and no
 * CAS append needs more retries than there are other CAS writers on the entity. Appends
 * without an expectation, batches and other entities never wait for turns.
 *
 * The retry loop: read the state you decide on and its head (bp_entity_head, or the clock of
 * the last event you folded), append with expected_clock = that clock, and on BP_ECONFLICT
 * read again and decide again; do not sleep between tries (the library orders them). An
 * idempotency key makes the retry of a request that did commit harmless.
 * examples/cas_retry.c and doc/GUIDE.md ("Optimistic concurrency: the retry loop").
 */

/** One item of an atomic batch. opts may be NULL; opts->durability is ignored. */
typedef struct bp_batch_item {
    const char *entity;            /**< 1..255 bytes of UTF-8, not starting with "batpak:" */
    const char *scope;             /**< 1..255 bytes of UTF-8 */
    uint16_t kind;                 /**< an application kind (bp_kind_is_application) */
    const void *payload;           /**< len bytes; may be NULL when len is 0 */
    size_t len;                    /**< payload length, at most the store's max_payload */
    const bp_append_options *opts; /**< NULL, or the item's CAS, idempotency key, correlation,
                                        causation and schema version (durability is ignored) */
} bp_batch_item;

/** Largest number of events in one batch. */
#define BP_BATCH_MAX 65535u

/**
 * Append n events (any entities) atomically: either all become visible and
 * durable (the batch is fdatasynced before it becomes visible), or none: the same as
 * bp_append_batch_ex(s, receipts, items, n, NULL). A bulk load without a sync per batch
 * uses bp_append_batch_ex with BP_NO_SYNC.
 * n == 0 writes nothing and returns BP_OK.
 * receipts: NULL or an array of n (receipts[0].struct_size set: BP_RECEIPT_INIT). CAS
 * expectations are checked against the state including earlier items of the same batch.
 * Idempotency: if every item carries a key and all were committed, the original receipts are
 * returned (replayed); if only some were, BP_ECONFLICT. On any error nothing is written.
 *
 * Size: a batch is written whole into one segment, and a frame's offset in a segment is 32
 * bits, so its frames (the payloads plus, per event, about 100 bytes and its entity, scope
 * and idempotency key) must fit in 4 GiB - 49 bytes: 255 payloads of BP_MAX_PAYLOAD fit,
 * 256 do not. A batch that does not fit in the active segment starts a new one (whatever
 * segment_size says); one that no segment holds fails with BP_ETOOBIG (naming its size and
 * the limit). Also BP_ETOOBIG: n > BP_BATCH_MAX, or a payload above max_payload.
 */
BP_API bp_status bp_append_batch(bp_store *s, bp_receipt *receipts, const bp_batch_item *items,
                                 size_t n);

/**
 * Options of one atomic batch (bp_append_batch_ex). Start from BP_BATCH_OPTIONS_INIT.
 */
typedef struct bp_batch_options {
    uint32_t struct_size;     /**< sizeof(bp_batch_options), set by BP_BATCH_OPTIONS_INIT */
    bp_durability durability; /**< the batch's durability, as an append's: BP_DURABLE (the
                                   default), BP_DURABLE_EVERY(n, ms), BP_NO_SYNC, or mode
                                   BP_DUR_DEFAULT = the store's (bp_open_options.durability).
                                   The items' own opts->durability is ignored. */
} bp_batch_options;

/** The defaults: BP_DURABLE, as bp_append_batch. */
#define BP_BATCH_OPTIONS_INIT                                                                      \
    {                                                                                              \
        (uint32_t)sizeof(bp_batch_options), {                                                      \
            BP_DUR_SYNC, 0, 0                                                                      \
        }                                                                                          \
    }

/**
 * bp_append_batch with options (opts NULL = BP_BATCH_OPTIONS_INIT): the same atomic
 * batch, with a durability of its own, like a single append's (bp_receipt.durability).
 *
 * Atomicity does not depend on the sync: the batch is written with one write, its events
 * carry batch markers (doc/FORMAT.md), and it becomes visible to readers all at once when
 * written (BP_NO_SYNC, BP_DURABLE_EVERY) or when synced (BP_DURABLE). Recovery keeps a
 * batch whole or removes it whole: a batch torn by a crash (at a frame boundary or inside
 * a frame) is cut at open, with every event after it (open report: frames_cut, bytes_cut).
 *
 * What a crash can take back: a process crash (kill -9) takes back nothing that was
 * acknowledged, synced or not (the OS holds the written bytes). A power loss or OS crash
 * can take back batches acknowledged without BP_DUR_SYNC since the last sync (each one
 * whole, never part of one); bp_store_sync, bp_store_close, a BP_DURABLE append or the
 * BP_DURABLE_EVERY bounds make them durable.
 *
 * Bulk loading: batches of a few hundred events with BP_NO_SYNC, then one bp_store_sync
 * (doc/GUIDE.md "Bulk loading"). Errors: as bp_append_batch, and BP_EINVAL for an unknown
 * opts->struct_size or durability mode (nothing written).
 */
BP_API bp_status bp_append_batch_ex(bp_store *s, bp_receipt *receipts, const bp_batch_item *items,
                                    size_t n, const bp_batch_options *opts);

/* ------------------------------------------------------------------ outbox */

/**
 * An outbox stages appends (any entities) in memory and commits them later as
 * one atomic batch (bp_append_batch), or discards them. Staging validates
 * each item at once and copies its arguments. An outbox is used by one thread
 * at a time and must be freed before its store is closed.
 */
typedef struct bp_outbox bp_outbox;

/** A new, empty outbox. Errors: BP_EINVAL, BP_EREADONLY, BP_ENOMEM. */
BP_API bp_status bp_outbox_new(bp_store *s, bp_outbox **out);

/**
 * Stage one append (arguments as bp_append_ex; opts->durability is ignored:
 * bp_outbox_flush commits a BP_DURABLE batch). Errors, with nothing staged: BP_EINVAL (the item
 * is refused as a batch item would be, naming its index), BP_ETOOBIG (payload,
 * or BP_BATCH_MAX items staged already), BP_ENOMEM.
 */
BP_API bp_status bp_outbox_stage(bp_outbox *ob, const char *entity, const char *scope,
                                 uint16_t kind, const void *payload, size_t len,
                                 const bp_append_options *opts);

/** Items staged now. */
BP_API size_t bp_outbox_len(const bp_outbox *ob);

/**
 * Commit every staged item as one atomic batch, in staging order; receipts:
 * NULL or room for bp_outbox_len() receipts. On success the outbox is empty
 * (an empty outbox flushes as BP_OK, writing nothing). On error nothing was
 * written and the items stay staged, to flush again or discard. Errors: as
 * bp_append_batch (BP_ECONFLICT for a CAS expectation, ...).
 */
BP_API bp_status bp_outbox_flush(bp_outbox *ob, bp_receipt *receipts);

/** Drop every staged item; the outbox stays usable. */
BP_API void bp_outbox_discard(bp_outbox *ob);

/** Discard and free. Accepts NULL. */
BP_API void bp_outbox_free(bp_outbox *ob);

/* ------------------------------------------------------- non-blocking append */

/**
 * A submitted append: bp_submit queues it and returns at once; the store's
 * submit thread commits queued appends in the order they were submitted,
 * sharing one fdatasync among the durable ones it finds queued together.
 * A ticket belongs to the caller until bp_ticket_free; it stays valid after
 * the store is closed (close commits every queued append first).
 */
typedef struct bp_ticket bp_ticket;

/** Capacity of bp_submit's queue when bp_open_options.submit_queue is 0. */
#define BP_SUBMIT_QUEUE_DEFAULT 1024u
/** Largest bp_open_options.submit_queue. */
#define BP_SUBMIT_QUEUE_MAX (1u << 20)
/** bp_ticket_wait: no time limit. */
#define BP_WAIT_FOREVER UINT32_MAX

/**
 * Queue an append (arguments as bp_append_ex; entity, scope, payload and the
 * options' strings and ids are copied, so they may go away on return). The
 * item is validated now: a bad coordinate, kind, size or option fails here
 * with nothing queued. CAS, idempotency and I/O are decided when it commits
 * and reported by the ticket. When the queue is full this waits for room.
 * Errors: BP_EINVAL, BP_ETOOBIG, BP_EREADONLY, BP_EIO (fail-stopped), BP_ENOMEM.
 */
BP_API bp_status bp_submit(bp_store *s, bp_ticket **out, const char *entity, const char *scope,
                           uint16_t kind, const void *payload, size_t len,
                           const bp_append_options *opts);

/** bp_submit that never waits: BP_EBUSY at once, nothing queued, when the queue is full. */
BP_API bp_status bp_try_submit(bp_store *s, bp_ticket **out, const char *entity, const char *scope,
                               uint16_t kind, const void *payload, size_t len,
                               const bp_append_options *opts);

/** True once the ticket's append is decided (committed, or failed). Never blocks. */
BP_API bool bp_ticket_poll(const bp_ticket *t);

/**
 * Wait up to timeout_ms (0: do not wait; BP_WAIT_FOREVER) for the ticket's
 * append. Returns what bp_append_ex would have returned, with *receipt filled
 * on BP_OK (receipt may be NULL), or BP_ETIMEDOUT when it is still queued.
 * May be called again after a timeout, and after success (same answer).
 */
BP_API bp_status bp_ticket_wait(bp_ticket *t, bp_receipt *receipt, uint32_t timeout_ms);

/** Release the ticket (the append goes ahead if it is still queued). Accepts NULL. */
BP_API void bp_ticket_free(bp_ticket *t);

/* ------------------------------------------------------- crypto-shredding */

/**
 * Forget an entity: destroy its data key. In a store opened with
 * bp_open_options.seal_payloads, every application payload is sealed
 * (XSalsa20-Poly1305, libsodium secretbox) with a key of its entity, kept in
 * DIR/dkeys/; reads open it transparently. After bp_forget those payloads are
 * gone for good: reads return the events with payload NULL, payload_len 0 and
 * payload_forgotten set; typed decoding fails with BP_ENOTFOUND. Ids,
 * coordinates, clocks, kinds and hashes stay (the hash covers the sealed
 * bytes), so bp_store_verify and receipts still hold. The key file is removed
 * and the directory fsynced before this returns. A later append to the entity
 * gets a new key. Projection states of the entity, cached and persisted in
 * DIR/projections/, are dropped too (call it when no projection or watcher of
 * the entity is running, or they may keep what they folded before).
 * Copies made before (snapshots, exports with DIR/dkeys) are
 * not reached: forget there too. The freed disk blocks may still hold the key
 * bytes until reused; use an encrypted filesystem for a stronger guarantee.
 * Errors: BP_EINVAL, BP_EREADONLY, BP_ENOTFOUND (the entity has no key: never
 * sealed, or forgotten already), BP_EIO.
 */
BP_API bp_status bp_forget(bp_store *s, const char *entity);

/** True when this handle seals the payloads it writes (the store has DIR/dkeys/). */
BP_API bool bp_store_seals(const bp_store *s);

/* ------------------------------------------------------ visibility fences */

/**
 * A visibility fence groups appends (any entities, from any threads) into one
 * publish boundary. An append inside the fence is validated at once and gets a
 * ticket; nothing of it is visible to readers, cursors or subscribers -- nor
 * written -- until bp_fence_commit, which writes every fenced append as one
 * atomic batch, fdatasyncs it and only then publishes it, deciding all the
 * tickets with their receipts. bp_fence_cancel drops them: their tickets fail
 * with BP_ECANCELED and nothing reaches the disk.
 *
 * Ordering and clocks: fenced events take their global seqs and entity clocks
 * when the fence commits, after every append committed before that, so entity
 * clocks stay dense across commit and cancel, and appends outside the fence go
 * on meanwhile without waiting. CAS expectations and idempotency keys of fenced
 * appends are checked at commit, against the store as it is then and earlier
 * appends of the same fence (as in bp_append_batch). A fence holds at most
 * BP_BATCH_MAX appends.
 *
 * Thread safety: bp_fence_append, _len, _commit and _cancel may be called from
 * any threads; bp_fence_free only once, when no other call is running.
 */
typedef struct bp_fence bp_fence;

/**
 * Open a fence on s. Several fences may be open at once; each commits on its
 * own. bp_store_close cancels the fences still open (their tickets fail with
 * BP_ECANCELED); only bp_fence_free may be called on them afterwards.
 * Errors: BP_EINVAL, BP_EREADONLY, BP_ENOMEM.
 */
BP_API bp_status bp_fence_begin(bp_store *s, bp_fence **out);

/**
 * Stage an append inside the fence (arguments as bp_append_ex; everything is
 * copied; opts->durability is ignored: a fence is always synced). *out gets a
 * ticket (bp_ticket_wait / _poll / _free) decided by commit or cancel.
 * Errors, with nothing staged: BP_EINVAL (bad item, or the fence is already
 * committed or cancelled), BP_ETOOBIG (bad size, or BP_BATCH_MAX staged),
 * BP_ENOMEM.
 */
BP_API bp_status bp_fence_append(bp_fence *f, bp_ticket **out, const char *entity,
                                 const char *scope, uint16_t kind, const void *payload, size_t len,
                                 const bp_append_options *opts);

/** Appends staged in the fence so far (0 once it is committed or cancelled). */
BP_API size_t bp_fence_len(const bp_fence *f);

/**
 * Write the fenced appends as one atomic batch, sync, publish, and decide the
 * tickets with their receipts. Afterwards the fence is closed whatever the
 * result. On an error (BP_ECONFLICT, BP_EIO, ...) none of the appends became
 * visible or durable and every ticket carries that error. An empty fence
 * commits as BP_OK, writing nothing. Errors: BP_EINVAL (NULL, or already
 * closed), and those of bp_append_batch.
 */
BP_API bp_status bp_fence_commit(bp_fence *f);

/**
 * Drop the fenced appends: their tickets fail with BP_ECANCELED. The fence is
 * closed. Errors: BP_EINVAL (NULL, or already committed or cancelled).
 */
BP_API bp_status bp_fence_cancel(bp_fence *f);

/** Free the fence, cancelling it first if still open. Tickets stay valid. Accepts NULL. */
BP_API void bp_fence_free(bp_fence *f);

/* ----------------------------------------------------------------- stats */

/** Sizes and counters of an open store (bp_store_stats). */
typedef struct bp_store_stats {
    uint32_t struct_size;   /**< sizeof(bp_store_stats), set by BP_STORE_STATS_INIT */
    uint64_t events;        /**< published events */
    uint64_t entities;      /**< distinct entities in the index (the library's batpak:store too) */
    uint64_t scopes;        /**< distinct scopes in the index */
    uint32_t segments;      /**< segment files */
    uint64_t bytes_on_disk; /**< segments + checkpoint + STORE (with the zeros written ahead
                                 of the newest segment's end while it is open) */
    uint64_t index_bytes;   /**< memory held by the in-memory index */
    uint64_t fsyncs;        /**< fdatasync/fsync calls made by this handle; a read-only handle
                                 beside a live writer: the writer's (DIR/LIVE, at most 10 ms
                                 old while it appends), as for appends, write_*_us, failed */
    uint64_t appends;       /**< events appended by this handle (a batch counts each event) */
    uint64_t write_p50_us;  /**< append latency percentiles, this handle */
    uint64_t write_p99_us;  /**< 99th percentile, like write_p50_us */
    uint64_t write_max_us;  /**< slowest append, like write_p50_us */
    bool failed;            /**< fail-stopped by an I/O error */
    bool read_only;         /**< opened with bp_open_options.read_only */
    uint64_t index_file_bytes; /**< on disk, beside bytes_on_disk: the segment index files
                                    and entities.ckpt, caches that make reads and opens cheap
                                    (since 1.1; a 1.0 caller's struct ends before it) */
    uint32_t writer_pid;       /**< the process that holds the store writable (this one, for a
                                    writable handle), 0 when none (since 1.2, like readers) */
    uint32_t readers;          /**< read-only handles open on the store in any process, this one
                                    included: those that took their byte lock of DIR/LOCK (not
                                    on a read-only medium; doc/FORMAT.md "Processes") */
} bp_store_stats;

/** A bp_store_stats to fill: struct_size set, the rest zero. */
#define BP_STORE_STATS_INIT                                                                        \
    { (uint32_t)sizeof(bp_store_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, false, 0, 0, 0 }

/**
 * Fill *out with the store's sizes and counters. The latencies are those of the appends
 * and batches that succeeded on this handle, in microseconds from the start of the commit
 * until it was written (and synced, as its durability asks), read from a histogram: each
 * value is the upper bound of its bucket; 0 before the first append.
 * Safe from any thread while appends go on. Errors: BP_EINVAL (NULL argument).
 */
BP_API bp_status bp_store_stats_get(bp_store *s, bp_store_stats *out);

/**
 * The store's metrics as Prometheus text (exposition format 0.0.4), for a program that
 * serves them: batpak_info, events, entities, segments, disk and index bytes, the global_seq
 * watermarks, appends and fsyncs, a write latency histogram (batpak_write_latency_seconds),
 * the writer's and bp_submit's queues, subscription queues and drops, workers, their
 * largest cursor lag and the events they skipped as poison, the projection cache, the failed state
 * and the open report. Counters and the histogram count what this handle did since it was opened.
 * *text receives a NUL-terminated heap string; free it with bp_free.
 * Safe from any thread while appends go on. Errors: BP_EINVAL, BP_ENOMEM.
 */
BP_API bp_status bp_store_prometheus(bp_store *s, char **text);

/* ----------------------------------------------------------- diagnostics */

/** What a store is doing, for operators (bp_store_diagnostics_get). */
typedef struct bp_store_diagnostics {
    uint32_t struct_size;     /**< sizeof(bp_store_diagnostics): BP_STORE_DIAGNOSTICS_INIT */
    uint64_t published_seq;   /**< highest global_seq readers see */
    uint64_t written_seq;     /**< highest written to a segment (or queued for the next sync) */
    uint64_t synced_seq;      /**< highest on stable storage */
    uint32_t unsynced_events; /**< events written since the last fdatasync */
    uint64_t pending_bytes;   /**< durable frames queued for the next group commit */
    bool syncing;             /**< an fdatasync is running now */
    uint32_t submit_queued;   /**< tickets waiting in bp_submit's queue */
    uint32_t submit_capacity; /**< capacity of that queue (bp_open_options.submit_queue) */
    uint32_t segments;        /**< segment files (bp_store_segments_list lists them) */
    bool read_only;           /**< opened with bp_open_options.read_only */
    bool failed;              /**< fail-stopped: every write returns failed_msg's error */
    char failed_msg[300];     /**< the error that fail-stopped the store; "" when not failed */
} bp_store_diagnostics;

/** Sets struct_size; the library fills the rest. */
#define BP_STORE_DIAGNOSTICS_INIT                                                                  \
    {                                                                                              \
        (uint32_t)sizeof(bp_store_diagnostics), 0, 0, 0, 0, 0, false, 0, 0, 0, false, false, {     \
            0                                                                                      \
        }                                                                                          \
    }

/**
 * Fill *out with the writer's watermarks and queues and the failed state (what open found
 * is bp_store_open_report_get's). Safe from any thread while appends go on.
 * Errors: BP_EINVAL (NULL argument, or out->struct_size unknown).
 */
BP_API bp_status bp_store_diagnostics_get(bp_store *s, bp_store_diagnostics *out);

/** One segment file (bp_store_segments_list). */
typedef struct bp_segment_info {
    uint32_t struct_size; /**< sizeof(bp_segment_info): BP_SEGMENT_INFO_INIT */
    uint32_t segno;       /**< segment number: the file is DIR/segments/NNNNNN.fbat */
    uint64_t bytes;       /**< written so far (with the footer when sealed) */
    uint64_t events;      /**< events in it, published or not */
    uint64_t first_seq;   /**< 0 when it holds none */
    uint64_t last_seq;    /**< 0 when it holds none */
    bool sealed;          /**< closed to appends, its SIDX footer written */
    bool mapped;          /**< readers have mapped it */
} bp_segment_info;

/** Sets struct_size; the library fills the rest. */
#define BP_SEGMENT_INFO_INIT                                                                       \
    { (uint32_t)sizeof(bp_segment_info), 0, 0, 0, 0, 0, false, false }

/**
 * The store's segment files, oldest first: the first max of them into out (out[0].struct_size
 * set by BP_SEGMENT_INFO_INIT gives the stride), and their number into *n. out may be NULL
 * when max is 0, to ask for the number. Safe from any thread while appends go on.
 * Errors: BP_EINVAL (NULL argument, or out[0].struct_size unknown), BP_ETOOBIG (more than
 * max: the first max are filled, *n says how many there are).
 */
BP_API bp_status bp_store_segments_list(bp_store *s, bp_segment_info *out, size_t max, size_t *n);

/* -------------------------------------------------------------- snapshot */

/** What bp_store_snapshot copied. */
typedef struct bp_snapshot_report {
    uint32_t struct_size; /**< sizeof(bp_snapshot_report), set by BP_SNAPSHOT_REPORT_INIT */
    uint64_t global_seq;  /**< the copy holds exactly the events 1..global_seq */
    uint32_t segments;    /**< segment files copied */
    uint64_t bytes;       /**< bytes written to the copy */
    uint64_t duration_us; /**< wall time of the snapshot, in microseconds */
} bp_snapshot_report;

/** A bp_snapshot_report to fill: struct_size set, the rest zero. */
#define BP_SNAPSHOT_REPORT_INIT                                                                    \
    { (uint32_t)sizeof(bp_snapshot_report), 0, 0, 0, 0 }

/**
 * A consistent online backup into dest, a path that must not exist. Every
 * event appended before the call is synced and copied, none appended after;
 * appends from other threads go on meanwhile (they wait only for the sync).
 * The copy has the same store id and key registry (DIR/keys/); cursor
 * checkpoints, projection snapshots and index.ckpt are not copied (the copy
 * rebuilds its index at open). It is built in "dest.partial-PID" and renamed
 * to dest when complete and fsynced: after a crash dest either does not exist
 * or is a whole store. A bp_compact waits until the copy is done (it reads the
 * segment files by name, one open at a time). On a read-only handle beside a live writer
 * (another process), it copies what the writer has published (it refreshes first), from the
 * files the handle maps: a compaction by the writer meanwhile does not change the copy.
 * out may be NULL.
 * Errors: BP_EINVAL (also: dest is inside the store), BP_EEXIST (dest exists), BP_EIO (the copy
 * failed: dest was not created and the store is unaffected; or the store is fail-stopped),
 * BP_ENOMEM.
 */
BP_API bp_status bp_store_snapshot(bp_store *s, bp_snapshot_report *out, const char *dest);

/* --------------------------------------------------------------- compact */

/**
 * Mark entity as deleted: append a BP_KIND_SYSTEM_TOMBSTONE event (empty payload) at
 * (entity, scope), in the entity's chain, with the store's default durability. Reads still
 * return the entity's events; bp_compact with tombstoned set drops every event up to and
 * including its last tombstone. Appending to the entity again later is allowed (the chain
 * goes on). receipt may be NULL.
 * Errors: as bp_append (BP_EINVAL for a bad or reserved coordinate).
 */
BP_API bp_status bp_tombstone(bp_store *s, bp_receipt *receipt, const char *entity,
                              const char *scope);

/** Progress of a long operation: done out of total units (each operation says which). It
 * runs on the calling thread. */
typedef void (*bp_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/** What bp_compact drops. A policy only ever removes a prefix of each entity's chain (its
 * oldest events), so that the chain stays verifiable from an anchor: the clock and hash of
 * its last removed event, kept in DIR/ANCHORS. All zero: merge segments, drop nothing. */
typedef struct bp_compact_options {
    uint32_t struct_size; /**< sizeof(bp_compact_options), set by BP_COMPACT_OPTIONS_INIT */
    uint64_t max_age_ms;  /**< drop an entity's events older than this (HLC wall time), oldest
                               first, stopping at its first newer event; 0 = no age limit */
    uint64_t keep_last;   /**< keep at most the newest keep_last events per entity; 0 = all */
    bool tombstoned;      /**< drop every event of an entity up to and including its last
                               BP_KIND_SYSTEM_TOMBSTONE event */
    bool dry_run;         /**< plan and report only; nothing is written (a read-only handle
                               may do it) */
    /** NULL, or called as the events of the range are copied, with the events
     * looked at so far and their total (units: events). It runs
     * on the calling thread while the compaction holds the store's compaction lock: it may
     * read, append and take stats on this store (and use other stores), but bp_compact of
     * the same store returns BP_EBUSY there, and it must not close the store */
    bp_progress_fn progress;
    void *progress_ctx; /**< passed to progress */
} bp_compact_options;
/** No policy (merge the sealed segments, drop nothing), no progress callback. */
#define BP_COMPACT_OPTIONS_INIT                                                                    \
    { (uint32_t)sizeof(bp_compact_options), 0, 0, false, false, NULL, NULL }

/** What bp_compact did (or, with dry_run, would do). */
typedef struct bp_compact_report {
    uint32_t struct_size;     /**< sizeof(bp_compact_report), set by BP_COMPACT_REPORT_INIT */
    uint32_t segments_before; /**< sealed segments in the compacted range */
    uint32_t segments_after;  /**< the files that replace them (0 when nothing is kept) */
    uint64_t events_kept;     /**< events of the range kept */
    uint64_t events_removed;  /**< events of the range dropped by the policy */
    uint64_t bytes_before, bytes_after;
    uint32_t entities_anchored; /**< entities that lost events in this run */
    uint64_t upto;              /**< the range ends at this global_seq */
    bool changed;               /**< false: there was nothing to do, nothing was written */
    uint64_t duration_us;       /**< wall time of the call, in microseconds */
} bp_compact_report;

/** A bp_compact_report to fill: struct_size set, the rest zero. */
#define BP_COMPACT_REPORT_INIT                                                                     \
    { (uint32_t)sizeof(bp_compact_report), 0, 0, 0, 0, 0, 0, 0, 0, false, 0 }
/** @var bp_compact_report::bytes_before
 * Size of the range's segment files. */
/** @var bp_compact_report::bytes_after
 * Size of the files that replace them (with dry_run, an estimate: footers are estimated). */

/**
 * Compact the store online: seal the active segment, then rewrite every sealed segment
 * into as few files as segment_size allows, without the events the policy drops. Kept
 * events are copied byte for byte (ids, hashes, clocks, global_seq and payloads, sealed
 * ones included), each checked (CRC, decode, hash) before it is copied. Readers, cursors
 * and appenders carry on meanwhile; appends wait only while the result is swapped in.
 *
 * Afterwards: global_seqs of dropped events are holes (reads, cursors and exports skip
 * them); an entity's clocks go on from its anchor, and its first kept event's prev_hash
 * is the anchor's hash, which verify checks; projections of entities that lost events
 * fold from their first kept event (their cached and persisted states are dropped);
 * idempotency keys of dropped events are forgotten.
 *
 * Crash safety: the new files are written and fsynced first under temporary names, then
 * one manifest (DIR/COMPACT) is written atomically: the commit point. A crash before it
 * leaves the store as it was (open removes the leftovers); after it, open finishes the
 * swap. The disk space of the replaced files is returned once no reader uses them.
 * Compaction never waits for readers nor for events the application holds: an event
 * read before (bp_get, an iterator's, a cursor batch, a delivery) stays valid for its
 * stated lifetime, its bytes kept mapped until it is released, and a thread that holds
 * events may call bp_compact. It waits for a bp_store_verify or bp_store_snapshot in
 * progress. out may be NULL.
 * Errors: BP_EINVAL (options), BP_EREADONLY, BP_EBUSY (called from this store's own
 * compaction progress callback), BP_ECORRUPT (a frame to copy failed its
 * checks: nothing was changed), BP_ENOMEM, BP_EIO (before the commit: nothing changed and
 * the store goes on; after it: the store fail-stops, and the next open finishes it).
 */
BP_API bp_status bp_compact(bp_store *s, bp_compact_report *out, const bp_compact_options *opts);

/* ---------------------------------------------------------------- verify */

/** What bp_store_verify checked and found. */
typedef struct bp_verify_report {
    uint32_t struct_size;    /**< sizeof(bp_verify_report), set by BP_VERIFY_REPORT_INIT */
    uint32_t segments;       /**< segment files read */
    uint64_t frames;         /**< frames decoded */
    uint64_t events;         /**< events checked against their hash, chain and sequence */
    uint64_t entities;       /**< entity chains (entities compaction emptied included) */
    uint64_t problems;       /**< 0 means clean */
    char first_problem[256]; /**< what and where, empty when clean */
} bp_verify_report;

/** A bp_verify_report to fill: struct_size set, the rest zero. */
#define BP_VERIFY_REPORT_INIT                                                                      \
    {                                                                                              \
        (uint32_t)sizeof(bp_verify_report), 0, 0, 0, 0, 0, {                                       \
            0                                                                                      \
        }                                                                                          \
    }

/**
 * Told of each problem verify finds: entity is NULL for one that belongs to no
 * entity (a frame, a footer, the sequence, index.ckpt), else the entity whose
 * chain it breaks; only the first problem of each entity is told (the report
 * counts them all).
 */
typedef void (*bp_problem_fn)(void *ctx, const char *entity, const char *problem);

/** Options of bp_store_verify. Start from BP_VERIFY_OPTIONS_INIT. */
typedef struct bp_verify_options {
    uint32_t struct_size;     /**< sizeof(bp_verify_options), set by BP_VERIFY_OPTIONS_INIT */
    bp_progress_fn progress;  /**< NULL, or called with the bytes checked and their total:
                                   once with 0 before the first segment, then after each */
    void *progress_ctx;       /**< passed to progress */
    bp_problem_fn on_problem; /**< NULL, or told of each problem as bp_problem_fn says */
    void *problem_ctx;        /**< passed to on_problem */
} bp_verify_options;

/** No callbacks. */
#define BP_VERIFY_OPTIONS_INIT                                                                     \
    { (uint32_t)sizeof(bp_verify_options), NULL, NULL, NULL, NULL }

/**
 * Re-read every segment: frame CRCs, footers, every event hash, every
 * per-entity chain (prev_hash, gap-free clocks, starting from its anchor after a
 * compaction), the global sequence (dense above the compacted range). Besides the
 * segments it checks the in-memory index every read uses, and index.ckpt and the segment
 * index files (DIR/segments/NNNNNN.fidx) when present, against the frames.
 * Returns BP_OK when clean, BP_ECORRUPT when problems were found (report filled
 * either way), other errors for I/O failures. Appends and reads go on meanwhile; a
 * bp_compact waits until verify is done (verify reads the segment files by name, one
 * open at a time), so its callbacks must not call bp_compact. opts may be NULL (no
 * callbacks); the callbacks run on the calling thread.
 * What is checked is what the handle's view holds: events, seals and an index.ckpt written
 * since are past it. On a read-only handle whose writer (another process) compacts the store
 * while verify reads the files, verify makes a new view (as bp_store_refresh does) and checks
 * again, up to 3 passes; problems found after the files changed are not counted, though
 * on_problem may have heard of one twice (once per pass).
 * Errors: BP_EINVAL (a NULL argument, or opts->struct_size unknown), BP_ECORRUPT, BP_EBUSY
 * (a read-only handle's writer compacted during each pass: nothing is known, run it again),
 * BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_store_verify(bp_store *s, bp_verify_report *out, const bp_verify_options *opts);

/* ------------------------------------------------------- export / import */

/** Where bp_export writes: BP_OK, or an error that stops the export and is returned. */
typedef bp_status (*bp_write_fn)(void *ctx, const void *data, size_t len);

/** Options of bp_export. Start from BP_EXPORT_OPTIONS_INIT. */
typedef struct bp_export_options {
    uint32_t struct_size;    /**< sizeof(bp_export_options), set by BP_EXPORT_OPTIONS_INIT */
    uint64_t after_seq;      /**< export the events with global_seq > after_seq (0: all) */
    bp_progress_fn progress; /**< NULL, or called with the events written and their total */
    void *progress_ctx;      /**< passed to progress */
} bp_export_options;

/** Every event, no progress callback. */
#define BP_EXPORT_OPTIONS_INIT                                                                     \
    { (uint32_t)sizeof(bp_export_options), 0, NULL, NULL }

/**
 * Write every published event with global_seq > opts->after_seq, in order, as NDJSON
 * through write(write_ctx, ...): one line per event with every field (ids, coordinate,
 * kind, clock, hlc, flags, correlation, causation, idempotency key, batch marker, both
 * hashes) and the payload in base64 (doc/FORMAT.md "Export"). The same events always give
 * the same bytes. A compacted store's export (with after_seq below its compacted range's
 * end) starts with one more line, its anchors record: the range's end and each anchor
 * (entity, clock, hash), what an import needs to restore it. opts may be NULL (every
 * event, no progress).
 * Errors: BP_EINVAL, BP_ECORRUPT / BP_EIO reading a frame, BP_ENOMEM, or write's error.
 */
BP_API bp_status bp_export(bp_store *s, bp_write_fn write, void *write_ctx,
                           const bp_export_options *opts);

/** What an import did. */
typedef struct bp_import_report {
    uint32_t struct_size; /**< sizeof(bp_import_report), set by BP_IMPORT_REPORT_INIT */
    uint64_t lines;       /**< lines read */
    uint64_t imported;    /**< events written */
    uint64_t skipped;     /**< events the store held already (same id at the same seq) */
} bp_import_report;

/** A bp_import_report to fill: struct_size set, the rest zero. */
#define BP_IMPORT_REPORT_INIT                                                                      \
    { (uint32_t)sizeof(bp_import_report), 0, 0, 0 }

/**
 * An import of bp_export's lines into a store, line by line. Every line is
 * checked before anything is written: its fields, its event_hash against
 * them, its place (the store's next global_seq, its entity's next clock,
 * prev_hash = the entity's head). Batches are written whole or not at all.
 * Events the store already holds (the same id at the same seq: an import
 * resumed after a crash) are skipped; another event there is refused. Errors
 * name the line. Import into an empty store opened with no_open_event (its
 * own open event would take seq 1), or into one holding a prefix of the export.
 * An export that starts with an anchors record (a compacted store's) imports only
 * into an empty store: the record becomes its DIR/ANCHORS and the events keep their
 * seqs, holes included, so the restored store exports the same bytes; a store that
 * holds events or other anchors refuses it (BP_ECONFLICT), and so does resuming such
 * an import that was interrupted within the compacted range.
 */
typedef struct bp_importer bp_importer;

/** Errors: BP_EINVAL, BP_EREADONLY, BP_ENOMEM. */
BP_API bp_status bp_import_begin(bp_store *s, bp_importer **out);

/**
 * Import one line (a trailing newline is allowed). Lines before a refused one
 * are imported (but for a batch the refused line is part of); after an error
 * every later call fails. Errors: BP_EINVAL (malformed, out of place in a
 * batch, an anchors record after line 1), BP_EVERSION (an anchors record of an
 * unknown format), BP_ECORRUPT (event_hash does not match: the export was altered),
 * BP_ECONFLICT (the event does not follow the store's events), BP_ETOOBIG,
 * BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_import_line(bp_importer *imp, const char *line, size_t len);

/** Write what is held, sync, report (may be NULL) and free the importer. Returns the
 * first error of the import (a batch left incomplete at the end is one). */
BP_API bp_status bp_import_end(bp_importer *imp, bp_import_report *report);

#ifdef __cplusplus
}
#endif
#endif
