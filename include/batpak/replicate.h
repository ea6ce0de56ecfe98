/** @file
 * batpak/replicate.h — beyond one machine: committed events flow through NATS JetStream.
 *
 * A relay runs inside the process that owns a store: a durable cursor (checkpoint
 * DIR/cursors/ID.ckpt) that publishes each committed event to a JetStream stream and moves
 * its position only after the server acknowledged the publish of that event and of every
 * one before it. It publishes in batches, asynchronously, pipelined: the next batch goes
 * out while the acks of the last one come in (at most two batches in flight). The
 * checkpoint file follows the position every 16,384 events and whenever the relay has caught
 * up or stops, so after a crash it publishes again at most that many events plus two
 * batches. Every message carries
 * `Nats-Msg-Id` = the event id, so a batch published again after a crash or a lost
 * acknowledgement is dropped by the server's duplicate window; events are published in
 * global_seq order, none skipped.
 *
 * A follower builds a read replica: it reads the stream in order and appends each event
 * to a store of its own with the ids, clocks, hlc and hashes of the source, checking each
 * event's hash and its entity's chain on arrival (an event that fails stops the follower
 * with an error naming the stream sequence). Its position is a checkpoint in the replica
 * (REPLICA/follow/STREAM.ckpt) written after the events before it are synced; events the
 * replica holds already are skipped, so a follower killed at any moment resumes without
 * loss or duplicates. Between bursts it closes the replica, so that other processes
 * (batpak commands) can open it read-only.
 *
 * A compacted source: the relay publishes the store's anchors (one message) before the
 * first batch that starts within its compacted range or right after it, and the range's
 * events one at a time; a follower starts an empty replica from those anchors, so the
 * replica exports exactly as the source. A replica that holds events ignores later anchors
 * (a source compacted after the follower caught up): it keeps the removed events.
 *
 * The message format (subject, headers, body) is in doc/FORMAT.md "Replication". These
 * calls need libbatpak built with libnats (Debian libnats-dev); without it they fail with
 * BP_ENOTSUP, and bp_replication_available() says so.
 */
#ifndef BATPAK_REPLICATE_H
#define BATPAK_REPLICATE_H

#include "read.h"

#ifdef __cplusplus
extern "C" {
#endif

/** True when this build of libbatpak can replicate through NATS JetStream (libnats). */
BP_API bool bp_replication_available(void);

/* ------------------------------------------------------------------- relay */

/** What a relay publishes and where. Initialise with BP_RELAY_CONFIG_INIT. */
typedef struct bp_relay_config {
    uint32_t struct_size; /**< sizeof(bp_relay_config), set by BP_RELAY_CONFIG_INIT */
    const char *url;      /**< NATS server URL(s), comma-separated ("nats://127.0.0.1:4222") */
    const char *stream;   /**< JetStream stream name (1..57 of [A-Za-z0-9_-]); created with the
                               subjects "PREFIX.>" and file storage when it does not exist */
    const char *subject_prefix; /**< NULL: "batpak.STREAM"; each event goes to
                                     "PREFIX.KKKK", KKKK its kind in 4 hex digits */
    const char *checkpoint_id;  /**< NULL: "relay.STREAM"; the relay's position is kept in
                                     DIR/cursors/ID.ckpt like a cursor worker's */
    const bp_region *region;    /**< NULL: every event. A filtered relay feeds consumers of
                                     its own; a follower needs every event of the store */
    uint32_t batch;             /**< events per batch (0: 1024, at most 4096); two batches may be
                                     in flight, waiting for their acks */
    uint32_t ack_timeout_ms;    /**< how long to wait for a batch's acks before publishing
                                     again from the position (0: 5000) */
    uint32_t backoff_max_ms;    /**< longest wait between attempts while the server is away
                                     (0: 2000; the first wait is 50 ms, doubling) */
} bp_relay_config;

/** A bp_relay_config with every default. */
#define BP_RELAY_CONFIG_INIT                                                                       \
    { (uint32_t)sizeof(bp_relay_config), NULL, NULL, NULL, NULL, NULL, 0, 0, 0 }

/** A running relay (bp_relay_start). Opaque. */
typedef struct bp_relay bp_relay;

/**
 * Start a relay thread on store s (writable: it keeps a checkpoint). It connects in the
 * background and reconnects by itself; while the server is away it retries with bounded
 * backoff and never skips an event. Stop it with bp_relay_stop, before closing the store or
 * after: bp_store_close stops a relay still running (its position persisted) and leaves the
 * handle valid for bp_relay_stop, which then disconnects and frees it.
 * Errors: BP_EINVAL (config), BP_EREADONLY, BP_EBUSY (a relay or worker with this
 * checkpoint id runs already), BP_ECORRUPT (a damaged checkpoint), BP_ENOTSUP (built
 * without libnats), BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_relay_start(bp_store *s, bp_relay **out, const bp_relay_config *cfg);

/** What a relay has done (bp_relay_stats_get). */
typedef struct bp_relay_stats {
    uint32_t struct_size; /**< sizeof(bp_relay_stats), set by BP_RELAY_STATS_INIT */
    uint64_t position;    /**< global_seq of the last event acknowledged by the server */
    uint64_t published;   /**< events acknowledged by the server, this run */
    uint64_t duplicates;  /**< of them, acknowledged as duplicates (published before) */
    uint64_t retries;     /**< times it published again from its position (no ack in time,
                               a publish refused, server away) */
    uint64_t lag_events;  /**< published events of the store after position */
    bool connected;       /**< connected to a server now */
    bool running;         /**< false once it stopped */
    char last_error[256]; /**< the most recent failure ("" when none) */
} bp_relay_stats;

/** A bp_relay_stats to fill: struct_size set, the rest zero. */
#define BP_RELAY_STATS_INIT                                                                        \
    {                                                                                              \
        (uint32_t)sizeof(bp_relay_stats), 0, 0, 0, 0, 0, false, false, {                           \
            0                                                                                      \
        }                                                                                          \
    }

/** Fill *out. Safe from any thread. BP_EINVAL when an argument is NULL (*out, when given, is
 * then all zero). */
BP_API bp_status bp_relay_stats_get(bp_relay *r, bp_relay_stats *out);

/**
 * Wait until the relay's position reaches global_seq seq (acknowledged by the server), or
 * timeout_ms passes. BP_OK, BP_ETIMEDOUT, or the error that stopped the relay.
 */
BP_API bp_status bp_relay_wait(bp_relay *r, uint64_t seq, uint32_t timeout_ms);

/**
 * Stop the relay after the batches in flight (their acks are waited for up to
 * ack_timeout_ms), persist its position, disconnect and free it. Returns BP_OK or what stopped it
 * early. Accepts NULL.
 */
BP_API bp_status bp_relay_stop(bp_relay *r);

/* ---------------------------------------------------------------- follower */

/** Where a follower reads and how it runs. Initialise with BP_FOLLOW_CONFIG_INIT. */
typedef struct bp_follow_config {
    uint32_t struct_size;     /**< sizeof(bp_follow_config), set by BP_FOLLOW_CONFIG_INIT */
    const char *url;          /**< NATS server URL(s), comma-separated */
    const char *stream;       /**< the stream a relay publishes to (it must exist; 1..57 of
                                   [A-Za-z0-9_-]) */
    uint32_t batch;           /**< messages fetched at a time (0: 256, at most 4096) */
    uint32_t idle_close_ms;   /**< close the replica after this long without new messages, so
                                   other processes can open it (0: 200) */
    bool until_caught_up;     /**< return once every message the stream held when last asked
                                   is applied; false: follow until *stop is set */
    const volatile int *stop; /**< NULL, or a flag that stops the follower when non-zero
                                   (a signal handler may set it) */
    uint32_t backoff_max_ms;  /**< longest wait between attempts while the server is away
                                   (0: 2000) */
} bp_follow_config;

/** A bp_follow_config with every default. */
#define BP_FOLLOW_CONFIG_INIT                                                                      \
    { (uint32_t)sizeof(bp_follow_config), NULL, NULL, 0, 0, false, NULL, 0 }

/** What bp_follow did. */
typedef struct bp_follow_report {
    uint32_t struct_size; /**< sizeof(bp_follow_report), set by BP_FOLLOW_REPORT_INIT */
    uint64_t messages;    /**< messages read from the stream */
    uint64_t applied;     /**< events appended to the replica */
    uint64_t skipped;     /**< events the replica held already (a resend, a restart) */
    uint64_t stream_seq;  /**< the stream sequence of the last message applied or skipped */
    uint64_t global_seq;  /**< the replica's last global_seq */
    uint64_t duration_us; /**< wall time of the call */
} bp_follow_report;

/** A bp_follow_report to fill: struct_size set, the rest zero. */
#define BP_FOLLOW_REPORT_INIT                                                                      \
    { (uint32_t)sizeof(bp_follow_report), 0, 0, 0, 0, 0, 0 }

/**
 * Follow the stream into the replica store in replica_dir (created when missing), from
 * where the replica's checkpoint says, until cfg->stop is set or, with until_caught_up,
 * the stream is drained. Blocks the calling thread. The replica must receive no other
 * writes. Each event's hash and chain is checked before it is written.
 * Errors: BP_EINVAL (config), BP_ECORRUPT (an event fails its checks, or the replica's
 * checkpoint is damaged: the message names the stream sequence), BP_ECONFLICT (the
 * replica holds another event at that global_seq: it is not a replica of this stream),
 * BP_ENOTFOUND (no such stream), BP_ENOTSUP (built without libnats), BP_ELOCKED,
 * BP_EIO, BP_ENOMEM. out may be NULL; it is filled on error too.
 */
BP_API bp_status bp_follow(bp_follow_report *out, const char *replica_dir,
                           const bp_follow_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
