/** @file
 * batpak/project.h — projections (fold an entity's events into a state), their
 * incremental cache and persistent snapshots, watchers, and the replay lanes.
 *
 * A projection's state is a flat block of state_size bytes: the cache and the
 * snapshots copy it with memcpy, so it must not hold pointers to memory it
 * owns. A projection is identified by (name, version, state_size): change the
 * version whenever apply or the state layout changes, and cached or persisted
 * states of the old version are ignored.
 *
 * Threads: every function here may be called from any thread while appends go
 * on. apply and init run on the calling thread (a watcher's on its own
 * thread), without any store lock held: they may read the store.
 */
#ifndef BATPAK_PROJECT_H
#define BATPAK_PROJECT_H

#include "typed.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Fold one event into state. value is the event's payload decoded as the
 * matching entry of bp_projection.types (upcast to that version) when the
 * event's kind is one of them, else NULL. Return BP_OK, or an error: the
 * project call fails with it and the state is not cached.
 */
typedef bp_status (*bp_apply_fn)(void *ctx, void *state, const bp_event *ev, const void *value);

/**
 * A projection: how to fold an entity's events into a state of state_size bytes. The
 * library does not copy it: it must stay valid during each call that takes it, and for
 * a watcher until bp_watch_stop.
 */
typedef struct bp_projection {
    uint32_t struct_size; /**< sizeof(bp_projection), set by BP_PROJECTION_INIT */
    const char *name;     /**< 1..63 bytes of [A-Za-z0-9._-] */
    uint32_t version;     /**< the projection's own version: bump it when apply changes */
    size_t state_size;    /**< 1..16 MiB */
    void (*init)(void *ctx, void *state); /**< the state before any event; NULL: all zero */
    bp_apply_fn apply;                    /**< folds one event into the state; must not be NULL */
    const bp_type *const *types;          /**< kinds read, decoded (value != NULL) */
    size_t n_types;                       /**< entries in types */
    const uint16_t *kinds;                /**< more kinds read, undecoded (value == NULL) */
    size_t n_kinds;                       /**< n_types == n_kinds == 0: every event of the entity */
    void *ctx;                            /**< passed to init and apply */
    bool persist;            /**< keep snapshots in DIR/projections/ so a reopened store
                                  does not refold long streams */
    uint32_t snapshot_every; /**< persist: write a snapshot after this many new events
                                  (0 = 1024); close writes the rest */
} bp_projection;

/**
 * A projection with every field at its default (struct_size set, version 1, no name,
 * state_size or apply yet: set those): `bp_projection p = BP_PROJECTION_INIT;
 * p.name = ...`. A static projection reads best with designated initialisers:
 * `{.struct_size = sizeof(bp_projection), .name = "balance", .version = 1, ...}`.
 */
#define BP_PROJECTION_INIT                                                                         \
    { (uint32_t)sizeof(bp_projection), NULL, 1, 0, NULL, NULL, NULL, 0, NULL, 0, NULL, false, 0 }

/** What a project call did. */
typedef struct bp_project_info {
    uint32_t struct_size; /**< sizeof(bp_project_info), set by BP_PROJECT_INFO_INIT */
    uint64_t clock;       /**< the entity clock the state covers (0: no events) */
    uint64_t applied;     /**< events folded by this call (those of other kinds are skipped
                               from the index without reading them) */
    bool from_cache;      /**< started from a cached state */
    bool from_snapshot;   /**< started from a persisted snapshot */
} bp_project_info;

/** A bp_project_info to fill: struct_size set, the rest zero. */
#define BP_PROJECT_INFO_INIT                                                                       \
    { (uint32_t)sizeof(bp_project_info), 0, 0, false, false }

/** Freshness: every published event is folded in. */
#define BP_CONSISTENT 0u

/**
 * Fold entity's events into *state (p->state_size bytes).
 *
 * max_stale_ms == BP_CONSISTENT: the state covers every event of the entity
 * published when the call started. Otherwise a cached state that was
 * consistent at most max_stale_ms ago is returned as is (no index look-up).
 * The cache keeps one state per (projection, entity): a repeated call folds
 * only the events after the cached clock; when nothing is cached a persisted
 * snapshot (p->persist) is the starting point, else init. An unknown entity
 * yields the init state with clock 0. info may be NULL.
 * Errors: BP_EINVAL (bad projection or entity), apply's error, a typed decode
 * error (named event), BP_ECORRUPT / BP_EIO reading a frame, BP_ENOMEM.
 */
BP_API bp_status bp_project(bp_store *s, void *state, bp_project_info *info, const bp_projection *p,
                            const char *entity, uint32_t max_stale_ms);

/**
 * Like bp_project(BP_CONSISTENT) for a caller that holds a state at *clock:
 * when the entity's head clock is still *clock it returns BP_UNCHANGED and
 * touches nothing (no fold, no copy, *state untouched); else it projects into
 * *state, sets *clock and returns BP_OK.
 */
BP_API bp_status bp_project_if_changed(bp_store *s, void *state, uint64_t *clock,
                                       const bp_projection *p, const char *entity);

/** Counters of the projection cache. */
typedef struct bp_projection_cache_stats {
    uint32_t struct_size; /**< sizeof(bp_projection_cache_stats), set by
                             BP_PROJECTION_CACHE_STATS_INIT */
    uint64_t entries, bytes, limit;
    uint64_t hits;      /**< project calls answered without folding */
    uint64_t partial;   /**< calls that folded only events after a cached clock */
    uint64_t misses;    /**< calls that started from a snapshot or from init */
    uint64_t evictions; /**< states dropped to stay under the limit */
    uint64_t snapshots_written, snapshots_loaded;
    uint64_t snapshots_rejected; /**< unreadable, or no longer matching the store */
    uint64_t snapshots_failed;   /**< could not be written (the state is refolded instead) */
} bp_projection_cache_stats;

/** A bp_projection_cache_stats to fill: struct_size set, the rest zero. */
#define BP_PROJECTION_CACHE_STATS_INIT                                                             \
    { (uint32_t)sizeof(bp_projection_cache_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
/** @var bp_projection_cache_stats::entries
 * States cached now. */
/** @var bp_projection_cache_stats::bytes
 * Memory they hold: states, keys and bookkeeping. */
/** @var bp_projection_cache_stats::limit
 * The bound (bp_projection_cache_limit; BP_PROJECTION_CACHE_DEFAULT until set). */
/** @var bp_projection_cache_stats::snapshots_written
 * Persisted snapshots written. */
/** @var bp_projection_cache_stats::snapshots_loaded
 * Persisted snapshots used as a starting point. */

/** Default memory bound of the projection cache. */
#define BP_PROJECTION_CACHE_DEFAULT (64u << 20)

/**
 * Bound the cache to bytes (states + keys + bookkeeping), evicting least
 * recently used states now if needed; 0 disables caching.
 */
BP_API bp_status bp_projection_cache_limit(bp_store *s, size_t bytes);
/** Copy the cache's counters (counted since the store was opened) into *out.
 * Errors: BP_EINVAL (NULL argument). */
BP_API bp_status bp_projection_cache_stats_get(bp_store *s, bp_projection_cache_stats *out);

/**
 * Write a snapshot now for every cached state of a persisted projection that
 * is ahead of its snapshot. Close does the same but, snapshots being a cache,
 * ignores failures (counted in snapshots_failed). BP_EREADONLY on a read-only
 * store; BP_EIO when a file cannot be written.
 */
BP_API bp_status bp_projection_flush(bp_store *s);

/* ---------------------------------------------------------------- watchers */

/**
 * Called on the watcher's thread with the state after the events up to clock.
 * state is valid during the call only.
 */
typedef void (*bp_watch_fn)(void *ctx, const void *state, uint64_t clock);

/** A running projection watcher (bp_watch_projection); bp_watch_stop stops and frees it. */
typedef struct bp_watch bp_watch;

/**
 * Watch a projection of one entity: a thread calls fn once with the current
 * state, then after each append that changes it (an event of a kind the
 * projection reads). A slow fn misses no result: appends made while it runs
 * are folded together and the next call gets the latest state (updates
 * coalesce, the watcher is never dropped). p must stay valid until
 * bp_watch_stop. Errors: BP_EINVAL, BP_ENOMEM, or the first projection error.
 */
BP_API bp_status bp_watch_projection(bp_store *s, bp_watch **out, const bp_projection *p,
                                     const char *entity, bp_watch_fn fn, void *ctx);

/**
 * Stop and join the watcher's thread (fn is not running and is not called
 * again once this returns) and free it. Returns BP_OK, or the error that
 * stopped the watcher early (apply failed, I/O): bp_last_error says which.
 * Must not be called from fn. bp_store_close stops watchers still running but does not
 * free them: bp_watch_stop still frees the handle after the close.
 */
BP_API bp_status bp_watch_stop(bp_watch *w);

/* ------------------------------------------------------------ replay lanes */

/** Replay lanes. */
typedef enum bp_lane {
    BP_LANE_RAW = 0, /**< ev->payload points at the payload bytes in the mapped segment
                          (zero-copy, kept mapped during the call even if a compaction
                          replaces the segment); json is NULL */
    BP_LANE_JSON = 1 /**< json is the payload as JSON text (bp_event_json) */
} bp_lane;

/** Return BP_OK to go on; anything else stops the replay and is returned. json (json_len
 * bytes, NUL-terminated) is the payload as JSON text in the JSON lane, NULL in the raw lane. */
typedef bp_status (*bp_replay_fn)(void *ctx, const bp_event *ev, const char *json, size_t json_len);

/**
 * Call fn for every published event of region in global_seq order (a stable
 * snapshot taken at the start, as bp_query). ev and json are valid during
 * the call only. In the JSON lane, a payload without a JSON form fails the
 * replay with BP_EINVAL naming the event.
 */
BP_API bp_status bp_replay(bp_store *s, const bp_region *region, bp_lane lane, bp_replay_fn fn,
                           void *ctx);

#ifdef __cplusplus
}
#endif
#endif
