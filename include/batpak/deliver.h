/** @file
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
 * store is closed. bp_store_close stops workers still running (their threads are
 * joined, their positions persisted); their handles stay valid and are still freed with
 * bp_worker_stop, before or after the close.
 */
#ifndef BATPAK_DELIVER_H
#define BATPAK_DELIVER_H

#include "read.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- cursors */

/**
 * A pull cursor (bp_cursor_open): the events of a region in global_seq order, none missed.
 * Opaque; used by one thread at a time and freed with bp_cursor_free before its store is
 * closed.
 */
typedef struct bp_cursor bp_cursor;

/**
 * A cursor over the published events of region with global_seq > after_seq,
 * in global_seq order (region->from_seq also applies).
 * Errors: BP_EINVAL (bad region), BP_ENOMEM.
 */
BP_API bp_status bp_cursor_open(bp_store *s, bp_cursor **out, const bp_region *region,
                                uint64_t after_seq);

/**
 * The next events: up to max (1..4096) into evs[0..*n), in global_seq order,
 * each valid (payload included: the batch holds its own copies) until the next
 * call on this cursor or bp_cursor_free, whatever compaction does meanwhile. When none is available
 * it waits up to timeout_ms for one (0: does not wait). Returns BP_OK with *n >= 1; with *n == 0,
 * BP_ETIMEDOUT when nothing arrived in time (call again to go on waiting) or BP_DONE when the
 * region's to_seq is passed (nothing more can come). Errors: BP_EINVAL,
 * BP_ECORRUPT / BP_EIO reading a frame (the cursor stays before that event), BP_ENOMEM.
 */
BP_API bp_status bp_cursor_next(bp_cursor *c, const bp_event **evs, size_t max, size_t *n,
                                uint32_t timeout_ms);

/** global_seq of the last event returned (after_seq before the first). */
BP_API uint64_t bp_cursor_position(const bp_cursor *c);

/** An event handed out later than a threshold after its commit (its HLC wall time). */
typedef struct bp_gap {
    uint64_t global_seq; /**< the late event */
    uint64_t lag_ms;     /**< milliseconds from its commit (HLC wall time) to its hand-out */
} bp_gap;

/**
 * Gap observations: from now on, record every event this cursor hands out
 * more than threshold_ms after its commit (0 turns it off).
 */
BP_API void bp_cursor_observe_gaps(bp_cursor *c, uint32_t threshold_ms);

/** Move up to max recorded gaps (oldest first) into out; returns how many. At most 1024
 * are kept; the oldest go first. Any thread may call it. */
BP_API size_t bp_cursor_take_gaps(bp_cursor *c, bp_gap *out, size_t max);

/** Free the cursor and the events it returned last. Accepts NULL. */
BP_API void bp_cursor_free(bp_cursor *c);

/* ----------------------------------------------------------- subscriptions */

/** What a subscription delivers: where the event is, not its payload. */
typedef struct bp_notice {
    uint32_t struct_size; /**< sizeof(bp_notice), set by BP_NOTICE_INIT */
    uint64_t global_seq;  /**< the event's global_seq */
    uint64_t clock;       /**< its clock in its entity's chain */
    uint64_t hlc;         /**< its HLC (BP_HLC_WALL_MS / BP_HLC_LOGICAL) */
    bp_id event_id;       /**< its id */
    uint16_t kind;        /**< its kind */
    const char *entity;   /**< valid until the store is closed */
    const char *scope;    /**< valid until the store is closed */
} bp_notice;

/** A bp_notice to fill: struct_size set, the rest zero. */
#define BP_NOTICE_INIT                                                                             \
    { (uint32_t)sizeof(bp_notice), 0, 0, 0, {{0}}, 0, NULL, NULL }

/**
 * A lossy subscription (bp_subscribe_lossy): a bounded queue of notices filled by the
 * writers. Opaque; used by one thread at a time and freed with bp_unsubscribe before its
 * store is closed.
 */
typedef struct bp_subscription bp_subscription;

/** Largest queue of one subscription. */
#define BP_SUBSCRIPTION_MAX (1u << 20)

/**
 * Subscribe to notices of the events of region published from now on, into a
 * queue of capacity (1..BP_SUBSCRIPTION_MAX) notices. When the queue is full,
 * new notices are dropped and counted (bp_subscription_missed); the writer
 * never waits. Errors: BP_EINVAL, BP_ENOMEM.
 */
BP_API bp_status bp_subscribe_lossy(bp_store *s, bp_subscription **out, const bp_region *region,
                                    uint32_t capacity);

/**
 * Take the oldest queued notice; when the queue is empty wait up to
 * timeout_ms for one (0: do not wait). BP_OK, or BP_ETIMEDOUT when none came.
 */
BP_API bp_status bp_subscription_next(bp_subscription *sub, bp_notice *out, uint32_t timeout_ms);

/**
 * Notices dropped since the last call (and reset them): *count of them, and
 * *from_seq, a global_seq at or before the first one dropped (0 when none):
 * read the region again from there with a cursor to catch up. A cursor starts
 * after the seq it is given, so open it with `after_seq = *from_seq - 1`
 * (passing `*from_seq` itself would skip the first dropped event).
 */
BP_API void bp_subscription_missed(bp_subscription *sub, uint64_t *count, uint64_t *from_seq);

/** Counters of a subscription. */
typedef struct bp_subscription_stats {
    uint32_t struct_size; /**< sizeof(bp_subscription_stats), set by BP_SUBSCRIPTION_STATS_INIT */
    uint64_t delivered;   /**< notices taken by bp_subscription_next */
    uint64_t dropped;     /**< notices dropped because the queue was full, in total */
    uint32_t depth;       /**< notices waiting now */
    uint32_t capacity;    /**< the queue's size, as given to bp_subscribe_lossy */
} bp_subscription_stats;

/** A bp_subscription_stats to fill: struct_size set, the rest zero. */
#define BP_SUBSCRIPTION_STATS_INIT                                                                 \
    { (uint32_t)sizeof(bp_subscription_stats), 0, 0, 0, 0 }

/** Fill *out with the counters of sub. BP_EINVAL when an argument is NULL (*out, when given,
 * is then all zero). */
BP_API bp_status bp_subscription_stats_get(const bp_subscription *sub, bp_subscription_stats *out);

/** Stop the subscription and free it. Accepts NULL. */
BP_API void bp_unsubscribe(bp_subscription *sub);

/* ------------------------------------------------------------------ workers */

/** One delivery of an event to a worker's handler. */
typedef struct bp_delivery {
    const bp_event *ev; /**< with payload; valid during the call (compaction may run meanwhile) */
    uint32_t attempt;   /**< 1 for the first try of this event in this worker run */
    char idem_key[128]; /**< "<checkpoint id or 'local'>:<event id>": the same on every
                             delivery of this event to this worker, across restarts */
} bp_delivery;

/** Return BP_OK when the event is handled; any error retries it (with backoff). */
typedef bp_status (*bp_worker_fn)(void *ctx, const bp_delivery *d);

/** What a worker does with an event that failed max_attempts times. */
typedef enum bp_poison_policy {
    BP_POISON_STOP = 0, /**< stop the worker (bp_worker_stop returns the handler's error) */
    BP_POISON_SKIP = 1  /**< report it and go on with the next event */
} bp_poison_policy;

/**
 * How a cursor worker or reactor runs. Start from BP_WORKER_CONFIG_INIT; a field left 0
 * takes the default given. bp_cursor_worker and bp_reactor copy it (NULL there: the
 * defaults).
 */
typedef struct bp_worker_config {
    uint32_t struct_size;      /**< sizeof(bp_worker_config), set by BP_WORKER_CONFIG_INIT */
    const char *checkpoint_id; /**< NULL: the position lives in this process only; else
                                    1..63 bytes of [A-Za-z0-9._-]: the position is kept in
                                    DIR/cursors/ID.ckpt and a restarted worker resumes after it */
    uint64_t start_after;      /**< where to start when there is no checkpoint (0: the start) */
    uint32_t batch;            /**< events read at a time (0: 64; at most 4096) */
    uint32_t checkpoint_every; /**< persist the position after this many handled events (0: 1);
                                    at most this many are delivered again after a crash */
    uint32_t max_attempts;     /**< tries before an event is poison (0: 5) */
    uint32_t backoff_ms;       /**< wait before the first retry, doubling each time (0: 10) */
    uint32_t backoff_max_ms;   /**< longest wait between tries (0: 1000) */
    bp_poison_policy poison;   /**< what to do with a poison event (BP_POISON_STOP) */
    /** Called on the worker's thread for each poison event (NULL: none). */
    void (*on_poison)(void *ctx, const bp_event *ev, bp_status rc, uint32_t attempts);
    uint32_t gap_threshold_ms; /**< record deliveries later than this after their commit
                                    (bp_worker_take_gaps); 0: off */
} bp_worker_config;

/** The defaults: no checkpoint id, start at the beginning, every count and wait at its
 * default, BP_POISON_STOP, no on_poison, no gap recording. */
#define BP_WORKER_CONFIG_INIT                                                                      \
    { (uint32_t)sizeof(bp_worker_config), NULL, 0, 0, 0, 0, 0, 0, BP_POISON_STOP, NULL, 0 }

/**
 * A running cursor worker or reactor: a thread of the library. Opaque; bp_worker_stop stops
 * and frees it. bp_store_close stops those still running but does not free them: call
 * bp_worker_stop on each handle, before or after the close (after it, it only frees and
 * returns what stopped the worker early, if anything).
 */
typedef struct bp_worker bp_worker;

/**
 * Start a thread that calls fn(ctx, delivery) for each event of region, in
 * global_seq order, at least once: the position advances (and, with a
 * checkpoint id, is persisted atomically) only after fn returned BP_OK, so
 * after a crash a restarted worker delivers again at most checkpoint_every
 * events it had handled; make effects exactly-once with d->idem_key.
 * Errors: BP_EINVAL (config, region), BP_ECORRUPT (the checkpoint file is
 * damaged or names an event this store does not have), BP_EBUSY (a worker
 * with this checkpoint id runs already), BP_EREADONLY (a checkpoint id on a read-only
 * store), BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_cursor_worker(bp_store *s, bp_worker **out, const bp_region *region,
                                  bp_worker_fn fn, void *ctx, const bp_worker_config *cfg);

/**
 * Stop the worker after the event in hand (a handler running is finished;
 * no retry wait is sat out), persist its position, join its thread and free
 * it. Returns BP_OK, or what stopped it early: the poison event's error under
 * BP_POISON_STOP, or a read or checkpoint-write error.
 */
BP_API bp_status bp_worker_stop(bp_worker *w);

/** Counters of a worker (bp_worker_stats_get). */
typedef struct bp_worker_stats {
    uint32_t struct_size;         /**< sizeof(bp_worker_stats), set by BP_WORKER_STATS_INIT */
    uint64_t position;            /**< global_seq of the last event handled */
    uint64_t handled;             /**< events handled by this run */
    uint64_t retries;             /**< failed tries that were retried */
    uint64_t poisoned;            /**< events given up on (stopped on, or skipped) */
    uint64_t lag_events;          /**< published events of the store after passed: 0 once the worker
                                       has caught up, whatever its region */
    bool running;                 /**< false once it stopped (by itself, bp_worker_stop or
                                       bp_store_close) */
    uint64_t passed;              /**< every published event of the region with global_seq <= passed
                                       is handled (events outside the region and holes count as
                                       passed); >= position; UINT64_MAX once the region's to_seq is
                                       passed */
    uint64_t skipped;             /**< poison events skipped under BP_POISON_SKIP (of poisoned) */
    uint64_t last_skipped_seq;    /**< global_seq of the last of them (0: none) */
    char last_skipped_error[256]; /**< its last failure (for a reactor's typed payload that
                                       does not decode: the decode error), "" when none */
} bp_worker_stats;

/** A bp_worker_stats to fill: struct_size set, the rest zero. */
#define BP_WORKER_STATS_INIT                                                                       \
    {                                                                                              \
        (uint32_t)sizeof(bp_worker_stats), 0, 0, 0, 0, 0, false, 0, 0, 0, {                        \
            0                                                                                      \
        }                                                                                          \
    }

/** Fill *out with the counters of w. Any thread may call it while the worker runs.
 * BP_EINVAL when an argument is NULL (*out, when given, is then all zero). */
BP_API bp_status bp_worker_stats_get(bp_worker *w, bp_worker_stats *out);

/**
 * Wait until every published event of the worker's region with global_seq <= seq has been
 * handled (or skipped as poison); events outside the region and holes left by a compaction
 * count as passed. So after an append returned receipt r, bp_worker_wait(w, r.global_seq,
 * ms) returns once the worker has dealt with it, whether or not it is in the region.
 * Returns BP_OK, BP_ETIMEDOUT once timeout_ms passed first, the error that stopped the
 * worker early (its poison event's under BP_POISON_STOP, a read or checkpoint error), or
 * BP_ECANCELED when it was stopped (bp_worker_stop from another thread, bp_store_close)
 * short of seq; BP_EINVAL (NULL). Any thread may call it, several at once.
 */
BP_API bp_status bp_worker_wait(bp_worker *w, uint64_t seq, uint32_t timeout_ms);

/** bp_cursor_take_gaps for the deliveries of a worker (gap_threshold_ms; measured when the
 * handler is called). */
BP_API size_t bp_worker_take_gaps(bp_worker *w, bp_gap *out, size_t max);

/* ----------------------------------------------------------------- reactors */

/**
 * Append an event caused by trigger: causation_id = trigger's id, and the
 * trigger's correlation_id is kept (opts may be NULL; its causation and
 * correlation are overridden). Otherwise as bp_append_ex.
 */
BP_API bp_status bp_append_reaction(bp_store *s, bp_receipt *receipt, const bp_event *trigger,
                                    const char *entity, const char *scope, uint16_t kind,
                                    const void *payload, size_t len, const bp_append_options *opts);

/** The reactions a reactor's handler collects for one trigger. */
typedef struct bp_reactions bp_reactions;

/** Largest number of reactions to one trigger. */
#define BP_REACTIONS_MAX 256

/** Collect a reaction (copied: the arguments may go away when this returns). */
BP_API bp_status bp_react(bp_reactions *out, const char *entity, const char *scope, uint16_t kind,
                          const void *payload, size_t len);
struct bp_type; /* batpak/typed.h */
/** Collect a typed reaction (batpak/typed.h). */
BP_API bp_status bp_react_typed(bp_reactions *out, const char *entity, const char *scope,
                                const struct bp_type *type, const void *value);

/**
 * A reactor's handler: look at the trigger (d->ev; value is its payload
 * decoded as the reactor's type when the kinds match, else NULL) and collect
 * reactions with bp_react. It must collect the same reactions every time it
 * sees the same trigger. Return BP_OK, or an error to retry.
 */
typedef bp_status (*bp_reactor_fn)(void *ctx, const bp_delivery *d, const void *value,
                                   bp_reactions *out);

/**
 * A cursor worker (same config and guarantees) whose handler's reactions are
 * appended as one atomic batch per trigger, each with causation_id = the
 * trigger, its correlation_id, and idempotency key "<worker>:<trigger id>:<i>".
 * With a checkpoint id a trigger delivered again after a crash finds its
 * reactions committed and appends nothing: each reaction is written exactly
 * once. type may be NULL (value is then always NULL).
 */
BP_API bp_status bp_reactor(bp_store *s, bp_worker **out, const bp_region *region,
                            const struct bp_type *type, bp_reactor_fn fn, void *ctx,
                            const bp_worker_config *cfg);

/* ----------------------------------------------------------- back-pressure */

/** Delivery back-pressure of a store, summed over its subscriptions and workers. */
typedef struct bp_delivery_stats {
    uint32_t struct_size;    /**< sizeof(bp_delivery_stats), set by BP_DELIVERY_STATS_INIT */
    uint32_t subscriptions;  /**< lossy subscriptions open */
    uint64_t queued;         /**< notices waiting in their queues */
    uint64_t dropped;        /**< notices they dropped, in total */
    uint32_t workers;        /**< cursor workers and reactors running */
    uint64_t lag_events_max; /**< the most events published after a running worker's passed
                                  mark (bp_worker_stats.lag_events): 0 when all caught up */
    uint64_t poison_skipped; /**< events workers skipped as poison (BP_POISON_SKIP) since the
                                  store was opened, stopped workers included */
} bp_delivery_stats;

/** A bp_delivery_stats to fill: struct_size set, the rest zero. */
#define BP_DELIVERY_STATS_INIT                                                                     \
    { (uint32_t)sizeof(bp_delivery_stats), 0, 0, 0, 0, 0, 0 }

/** Fill *out. Safe from any thread while appends go on. On a read-only handle beside a live
 * writer in another process, the writer's subscriptions, queues, drops, workers and lag
 * (its last figures on DIR/LIVE, at most 10 ms old while it publishes) are added to the
 * handle's own (lag_events_max: the larger). Errors: BP_EINVAL (NULL argument). */
BP_API bp_status bp_delivery_stats_get(bp_store *s, bp_delivery_stats *out);

/** A durable position kept in DIR/cursors/ID.ckpt (a checkpointed worker, reactor or relay). */
typedef struct bp_checkpoint_info {
    uint32_t struct_size; /**< sizeof(bp_checkpoint_info), set by BP_CHECKPOINT_INFO_INIT */
    char id[64];          /**< the checkpoint id (the file name without ".ckpt") */
    uint64_t position;    /**< global_seq of the last event it handled */
    uint64_t lag_events;  /**< events published after position (holes of compaction included) */
    bool valid;           /**< false: the file does not decode (position and lag are 0) */
} bp_checkpoint_info;

/** A bp_checkpoint_info to fill: struct_size set, the rest zero. */
#define BP_CHECKPOINT_INFO_INIT                                                                    \
    { (uint32_t)sizeof(bp_checkpoint_info), {0}, 0, 0, false }

/**
 * The durable positions of the store, by id: each checkpointed worker, reactor and relay,
 * running or not, with how far it is behind the published events (read from the files:
 * a running worker may be ahead of its file by up to its checkpoint_every). Fills
 * out[0..min(max, *n)) and sets *n to how many there are; BP_ETOOBIG when that is more than
 * max (call with max 0 to count them). Errors: BP_EINVAL, BP_EIO.
 */
BP_API bp_status bp_checkpoints_list(bp_store *s, bp_checkpoint_info *out, size_t max, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
