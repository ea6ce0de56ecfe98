/*
 * batpak/deliver.h — delivery: pull cursors (ordered, lossless, from the index)
 * and lossy push subscriptions (bounded, never block a writer).
 *
 * Pick by the guarantee you need. A cursor never misses an event: it reads the
 * index, so it can fall behind but not lose anything, and it resumes from any
 * global_seq. A lossy subscription is a doorbell with a bounded queue: a slow
 * subscriber loses notices (counted, with the global_seq to re-read from with a
 * cursor), and writers never wait for it.
 *
 * Threads: a cursor or a subscription is used by one thread at a time; any
 * number of them may run while appends go on. Both must be freed before the
 * store is closed.
 */
#ifndef BATPAK_DELIVER_H
#define BATPAK_DELIVER_H

#include "read.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- cursors */

typedef struct bp_cursor bp_cursor;

/**
 * A cursor over the published events of region with global_seq > after_seq,
 * in global_seq order (region->from_seq also applies).
 * Errors: BP_EINVAL (bad region), BP_ENOMEM.
 */
BP_API bp_status bp_cursor_open(bp_store *s, const bp_region *region, uint64_t after_seq,
                                bp_cursor **out);

/**
 * The next events: up to max (1..4096) into evs[0..*n), in global_seq order,
 * each valid until the next call on this cursor. When none is available it
 * waits up to timeout_ms for one (0: does not wait).
 * Returns BP_OK with *n >= 1, or BP_DONE with *n == 0 (nothing arrived in
 * time, or the region's to_seq is passed). Errors: BP_EINVAL, BP_ECORRUPT /
 * BP_EIO reading a frame (the cursor stays before that event), BP_ENOMEM.
 */
BP_API bp_status bp_cursor_next(bp_cursor *c, const bp_event **evs, size_t max, size_t *n,
                                uint32_t timeout_ms);

/** global_seq of the last event returned (after_seq before the first). */
BP_API uint64_t bp_cursor_position(const bp_cursor *c);

BP_API void bp_cursor_free(bp_cursor *c);

/* ----------------------------------------------------------- subscriptions */

/** What a subscription delivers: where the event is, not its payload. */
typedef struct bp_notice {
    uint64_t global_seq;
    uint64_t clock;
    uint64_t hlc;
    bp_id event_id;
    uint16_t kind;
    const char *entity; /**< valid until the store is closed */
    const char *scope;  /**< valid until the store is closed */
} bp_notice;

typedef struct bp_subscription bp_subscription;

/** Largest queue of one subscription. */
#define BP_SUBSCRIPTION_MAX (1u << 20)

/**
 * Subscribe to notices of the events of region published from now on, into a
 * queue of capacity (1..BP_SUBSCRIPTION_MAX) notices. When the queue is full,
 * new notices are dropped and counted (bp_subscription_missed); the writer
 * never waits. Errors: BP_EINVAL, BP_ENOMEM.
 */
BP_API bp_status bp_subscribe_lossy(bp_store *s, const bp_region *region, uint32_t capacity,
                                    bp_subscription **out);

/**
 * Take the oldest queued notice; when the queue is empty wait up to
 * timeout_ms for one (0: do not wait). BP_OK, or BP_DONE when none came.
 */
BP_API bp_status bp_subscription_next(bp_subscription *sub, bp_notice *out, uint32_t timeout_ms);

/**
 * Notices dropped since the last call (and reset them): *count of them, and
 * *from_seq, a global_seq at or before the first one dropped (0 when none):
 * read the region again from there with a cursor to catch up.
 */
BP_API void bp_subscription_missed(bp_subscription *sub, uint64_t *count, uint64_t *from_seq);

/** Counters of a subscription. */
typedef struct bp_subscription_stats {
    uint64_t delivered; /**< notices taken by bp_subscription_next */
    uint64_t dropped;   /**< notices dropped because the queue was full, in total */
    uint32_t depth;     /**< notices waiting now */
    uint32_t capacity;
} bp_subscription_stats;

BP_API void bp_subscription_stats_get(const bp_subscription *sub, bp_subscription_stats *out);

/** Stop the subscription and free it. */
BP_API void bp_unsubscribe(bp_subscription *sub);

#ifdef __cplusplus
}
#endif
#endif
