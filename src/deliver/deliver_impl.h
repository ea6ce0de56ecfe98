/*
 * deliver_impl.h — internal: the delivery module (cursors, subscriptions, cursor workers,
 * reactors) and what the replication module builds on it.
 *
 * The module's state (bp_deliver_state) hangs off the store as module BP_MOD_DELIVER
 * (api/modules.h). Its locks: the subscriptions are guarded by the store's publish lock
 * (store.h: they are fed by the store's publish hook, which runs under it); the workers list
 * by the module's own mu, which is never held across a wait.
 */
#ifndef BP_DELIVER_IMPL_H
#define BP_DELIVER_IMPL_H

#include "api/modules.h"
#include "store/store.h"

typedef struct bp_deliver_state {
    struct bp_subscription **subs; /* [publish lock] lossy subscriptions (deliver.c) */
    uint32_t n_subs, subs_cap;     /* [publish lock] */
    pthread_mutex_t mu;            /* the workers list */
    struct bp_worker *workers;     /* [mu] cursor workers running (worker.c) */
    uint64_t poison_skipped;       /* atomic: events workers skipped as poison, in total */
    uint32_t fig_workers;          /* [publish lock] the workers and lag the writer last gave */
    uint64_t fig_lag;              /* readers of other processes (deliver_figures) */
} bp_deliver_state;

extern const bp_store_module bp_deliver_module;

/* The delivery state of s (never NULL once s is open through bp_store_open). */
static inline bp_deliver_state *bp_deliver_of(const bp_store *s) {
    return (bp_deliver_state *)bp_store_module_state(s, BP_MOD_DELIVER);
}

/* worker.c: bp_cursor_worker with cleanup(ctx) called once a started worker is stopped
 * (on a failed start ctx stays the caller's). */
bp_status bp_worker_start(bp_store *s, const bp_region *region, bp_worker_fn fn, void *ctx,
                          void (*cleanup)(void *ctx), const bp_worker_config *cfg, bp_worker **out);
/* worker.c: a cursor checkpoint file (FORMAT.md "Cursor checkpoints"): written atomically
 * into dir (made when missing); read from path, *found false (BP_OK) when there is none, the
 * decoder's error (naming path) when it does not decode. Workers, relays and followers. */
bp_status bp_cursorck_save(bp_fault *fault, const char *dir, const char *name, uint64_t position,
                           const bp_id *id);
bp_status bp_cursorck_load(const char *path, uint64_t *position, bp_id *id, bool *found);
/* worker.c: a batch worker hands each batch the cursor reads to fn whole, pipelined one
 * batch deep: fn(evs, n > 0) takes the batch (it copies what it keeps: evs are reused after
 * it returns) and returns BP_OK once every batch handed over BEFORE it is done (the batch
 * itself may still be in flight); fn(NULL, 0) returns BP_OK once everything handed over is
 * done (the worker calls it when the cursor has nothing more right now, and before it
 * stops). The position moves past a batch only after a call that vouches for it returned
 * BP_OK; the checkpoint follows it every cfg.checkpoint_every events and whenever nothing
 * is left in flight (caught up, stopping). When fn fails, everything in flight is forgotten: the
 * cursor goes back to the position and the events after it are handed over again, with
 * bounded backoff, for as long as it takes (no poison). attempt: 1, 2... since the last
 * success. */
typedef bp_status (*bp_worker_batch_fn)(void *ctx, const bp_event **evs, size_t n,
                                        uint32_t attempt);
bp_status bp_worker_start_batch(bp_store *s, const bp_region *region, bp_worker_batch_fn fn,
                                void *ctx, void (*cleanup)(void *ctx), const bp_worker_config *cfg,
                                bp_worker **out);
/* deliver.c: gap observations (cursors, workers). threshold_ms 0: off (atomic). The ring
 * keeps the newest BP_GAPS_MAX; n of them end before end. */
#define BP_GAPS_MAX 1024
typedef struct bp_gaps {
    pthread_mutex_t mu;
    uint32_t threshold_ms;
    bp_gap ring[BP_GAPS_MAX]; /* [mu] */
    size_t end, n;            /* [mu] */
} bp_gaps;
void bp_gaps_init(bp_gaps *g);
void bp_gaps_destroy(bp_gaps *g);
void bp_gaps_observe(bp_gaps *g, const bp_event *ev);
size_t bp_gaps_take(bp_gaps *g, bp_gap *out, size_t max);
/* deliver.c: bp_cursor_next whose wait also ends when *stop (atomic) is set. */
bp_status bp_cursor_next_stop(bp_cursor *c, const bp_event **evs, size_t max, size_t *n,
                              uint32_t timeout_ms, const bool *stop);
/* deliver.c: a worker's mark: the cursor stores into *passed (atomic, then wakes waiters)
 * how far every event of its region was handed out (UINT64_MAX: the region's to_seq is
 * passed), on each call that finds nothing new (the worker handled all it was given), and
 * when the worker calls bp_cursor_mark_passed after handling a batch whole. */
void bp_cursor_set_passed(bp_cursor *c, uint64_t *passed);
void bp_cursor_mark_passed(bp_cursor *c);
/* deliver.c: hand events out again from after_seq + 1 (a pipelined batch worker whose
 * batches in flight failed); the worker's mark is not lowered. */
void bp_cursor_rewind(bp_cursor *c, uint64_t after_seq);
/* worker.c: how many workers run, and the largest lag (published - passed) among them. */
void bp_workers_lag(bp_store *s, uint32_t *count, uint64_t *lag_max);
/* worker.c: the same, unless the workers list is locked by another thread (false). */
bool bp_workers_lag_try(bp_store *s, uint32_t *count, uint64_t *lag_max);
/* worker.c: stop every worker still running (close): threads joined, positions persisted;
 * the handles stay valid for bp_worker_stop, which frees them. */
void bp_worker_stop_all(bp_store *s);
/* worker.c: events workers skipped as poison, in total. */
uint64_t bp_workers_poison_skipped(bp_store *s);

#endif
