/*
 * Delivery: cursors (pull, lossless, from the index) and lossy subscriptions
 * (a bounded single-producer/single-consumer queue per subscriber, filled by
 * the publishing writer, never waited on).
 */
#include "deliver/deliver_impl.h"

#include <stdio.h>
#include <stdlib.h>

static void deliver_notices(void *ctx, bp_store *s, uint64_t from, uint64_t to);

#define CURSOR_BATCH_MAX 4096

/* ------------------------------------------------------- gap observations */

void bp_gaps_init(bp_gaps *g) {
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
}

void bp_gaps_destroy(bp_gaps *g) {
    pthread_mutex_destroy(&g->mu);
}

void bp_gaps_observe(bp_gaps *g, const bp_event *ev) {
    uint32_t threshold = __atomic_load_n(&g->threshold_ms, __ATOMIC_RELAXED);
    if (!threshold) return;
    uint64_t now = bp_pf_wall_ms(), at = BP_HLC_WALL_MS(ev->hlc);
    uint64_t lag = now > at ? now - at : 0;
    if (lag <= threshold) return;
    pthread_mutex_lock(&g->mu);
    g->ring[g->end] = (bp_gap){ev->global_seq, lag};
    g->end = (g->end + 1) % BP_GAPS_MAX;
    if (g->n < BP_GAPS_MAX) g->n++;
    pthread_mutex_unlock(&g->mu);
}

size_t bp_gaps_take(bp_gaps *g, bp_gap *out, size_t max) {
    pthread_mutex_lock(&g->mu);
    size_t n = g->n < max ? g->n : max;
    size_t start = (g->end + BP_GAPS_MAX - g->n) % BP_GAPS_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = g->ring[(start + i) % BP_GAPS_MAX];
    g->n -= n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* ----------------------------------------------------------------- cursors */

/* Invariants: position is the global_seq of the last event handed out; it (when not
 * NULL) iterates region from position + 1 over the events published when it was made. */
struct bp_cursor {
    bp_store *s;
    bp_region region; /* strings point into rf */
    bp_rfilter rf;
    uint64_t position;
    bp_iter *it;
    uint64_t it_limit; /* the watermark it was made at */
    bp_owned_event *evs;
    const bp_event **ptrs;
    size_t cap;
    const bool *stop; /* NULL, or a flag that ends a wait (bp_cursor_next_stop): atomic */
    uint64_t scanned; /* every event of the region <= scanned was handed out (position, or
                         the watermark of an iterator that ran out; UINT64_MAX: finished) */
    uint64_t *passed; /* NULL, or a worker's mark (bp_cursor_set_passed): atomic */
    bp_gaps gaps;
};

bp_status bp_cursor_open(bp_store *s, bp_cursor **out, const bp_region *region,
                         uint64_t after_seq) {
    if (!out) return bp_err(BP_EINVAL, "bp_cursor_open: out is NULL");
    *out = NULL;
    if (!s || !region) return bp_err(BP_EINVAL, "bp_cursor_open: NULL argument");
    bp_cursor *c = calloc(1, sizeof *c);
    if (!c) return bp_err(BP_ENOMEM, "bp_cursor_open: out of memory");
    bp_status rc = bp_rfilter_init(&c->rf, region);
    if (rc) {
        free(c);
        return rc;
    }
    bp_gaps_init(&c->gaps);
    c->s = s;
    c->region = *region;
    c->region.entity = c->rf.entity;
    c->region.entity_prefix = c->rf.prefix;
    c->region.scope = c->rf.scope;
    c->region.kinds = c->rf.kinds;
    c->position = after_seq;
    c->scanned = after_seq;
    *out = c;
    return BP_OK;
}

void bp_cursor_set_passed(bp_cursor *c, uint64_t *passed) {
    c->passed = passed;
}

void bp_cursor_mark_passed(bp_cursor *c) {
    if (!c->passed || __atomic_load_n(c->passed, __ATOMIC_SEQ_CST) >= c->scanned) return;
    __atomic_store_n(c->passed, c->scanned, __ATOMIC_SEQ_CST);
    bp_publish_notify(c->s);
}

void bp_cursor_rewind(bp_cursor *c, uint64_t after_seq) {
    bp_iter_free(c->it);
    c->it = NULL;
    c->position = after_seq;
    c->scanned = after_seq;
}

void bp_cursor_free(bp_cursor *c) {
    if (!c) return;
    bp_iter_free(c->it);
    for (size_t i = 0; i < c->cap; i++)
        bp_buf_free(&c->evs[i].frame);
    free(c->evs);
    free(c->ptrs);
    bp_rfilter_free(&c->rf);
    bp_gaps_destroy(&c->gaps);
    free(c);
}

void bp_cursor_observe_gaps(bp_cursor *c, uint32_t threshold_ms) {
    if (c) __atomic_store_n(&c->gaps.threshold_ms, threshold_ms, __ATOMIC_RELAXED);
}

size_t bp_cursor_take_gaps(bp_cursor *c, bp_gap *out, size_t max) {
    return c && out ? bp_gaps_take(&c->gaps, out, max) : 0;
}

uint64_t bp_cursor_position(const bp_cursor *c) {
    return c ? c->position : 0;
}

/* Copy ev (valid until the iterator moves) into o, which owns its bytes. */
static bp_status own_event(bp_owned_event *o, const bp_event *ev) {
    o->ev = *ev;
    snprintf(o->ebuf, sizeof o->ebuf, "%s", ev->entity);
    snprintf(o->sbuf, sizeof o->sbuf, "%s", ev->scope);
    o->ev.entity = o->ebuf;
    o->ev.scope = o->sbuf;
    if (ev->idempotency_key) {
        snprintf(o->ibuf, sizeof o->ibuf, "%s", ev->idempotency_key);
        o->ev.idempotency_key = o->ibuf;
    }
    o->frame.len = 0;
    if (ev->payload_len && bp_buf_append(&o->frame, ev->payload, ev->payload_len))
        return bp_err(BP_ENOMEM, "cursor: out of memory");
    o->ev.payload = ev->payload_len ? o->frame.data : ev->payload;
    return BP_OK;
}

static bool published_past(void *arg) {
    bp_cursor *c = arg;
    return bp_store_published(c->s) > c->it_limit;
}

/* Waiting ends early when *stop is set: a worker being stopped. */
static bool published_past_or_stop(void *arg) {
    bp_cursor *c = arg;
    return published_past(c) || (c->stop && __atomic_load_n(c->stop, __ATOMIC_SEQ_CST));
}

/* (Re)make the iterator from position + 1; false when the region is finished. */
static bp_status cursor_iter(bp_cursor *c) {
    bp_iter_free(c->it);
    c->it = NULL;
    bp_region r = c->region;
    if (r.from_seq <= c->position) r.from_seq = c->position + 1;
    c->it_limit = bp_store_published(c->s);
    return bp_query(c->s, &c->it, &r, BP_READ_FULL);
}

bp_status bp_cursor_next(bp_cursor *c, const bp_event **evs, size_t max, size_t *n,
                         uint32_t timeout_ms) {
    return bp_cursor_next_stop(c, evs, max, n, timeout_ms, NULL);
}

bp_status bp_cursor_next_stop(bp_cursor *c, const bp_event **evs, size_t max, size_t *n,
                              uint32_t timeout_ms, const bool *stop) {
    if (c) c->stop = stop;
    if (n) *n = 0;
    if (!c || !evs || !n) return bp_err(BP_EINVAL, "bp_cursor_next: NULL argument");
    if (max == 0 || max > CURSOR_BATCH_MAX)
        return bp_err(BP_EINVAL, "bp_cursor_next: max %zu out of range 1..%d", max,
                      CURSOR_BATCH_MAX);
    if (max > c->cap) {
        bp_owned_event *ne = realloc(c->evs, max * sizeof *ne);
        if (!ne) return bp_err(BP_ENOMEM, "cursor: out of memory");
        c->evs = ne;
        for (size_t i = c->cap; i < max; i++) {
            c->evs[i].frame = (bp_buf){0};
            c->evs[i].hold = NULL; /* own_event copies the payload into frame */
        }
        c->cap = max;
    }
    uint64_t deadline = bp_pf_mono_us() + (uint64_t)timeout_ms * 1000;
    bp_status rc;
    /* a read-only handle takes in what its writer (another process) published: at once, and
     * while it waits (its follower thread) */
    if (bp_store_read_only(c->s) && (rc = bp_store_refresh(c->s, NULL))) return rc;
    for (;;) {
        if (c->region.to_seq && c->position >= c->region.to_seq) {
            c->scanned = UINT64_MAX; /* nothing more can come */
            bp_cursor_mark_passed(c);
            return BP_DONE;
        }
        if (!c->it && (rc = cursor_iter(c))) return rc;
        while (*n < max) {
            const bp_event *ev;
            rc = bp_iter_next(c->it, &ev);
            if (rc == BP_DONE) { /* every event of the region up to it_limit is handed out */
                if (c->it_limit > c->scanned) c->scanned = c->it_limit;
                if (c->region.to_seq && c->it_limit >= c->region.to_seq) c->scanned = UINT64_MAX;
                break;
            }
            if (rc) { /* the iterator moved past the bad frame: resume before it next time */
                bp_iter_free(c->it);
                c->it = NULL;
                return *n ? BP_OK : rc;
            }
            if ((rc = own_event(&c->evs[*n], ev))) return rc;
            evs[*n] = &c->evs[*n].ev;
            bp_gaps_observe(&c->gaps, ev);
            c->position = ev->global_seq;
            if (c->position > c->scanned) c->scanned = c->position;
            (*n)++;
        }
        if (*n) return BP_OK;
        bp_cursor_mark_passed(c);
        /* nothing left in this snapshot: wait for the watermark to move, then look again */
        if (!published_past(c) &&
            (timeout_ms == 0 || !bp_wait_until(c->s, published_past_or_stop, c, deadline) ||
             !published_past(c)))
            return bp_err(BP_ETIMEDOUT, "cursor: no new event within %u ms", timeout_ms);
        bp_iter_free(c->it);
        c->it = NULL;
    }
}

/* ----------------------------------------------------------- subscriptions */

/* Invariants: head (written by the publisher under the publish lock) and tail (by the owner)
 * count notices pushed and taken; tail <= head <= tail + cap; slot i % cap holds notice i. */
struct bp_subscription {
    bp_store *s;
    bp_rfilter rf;
    bp_notice *ring;
    uint32_t cap;
    uint64_t head, tail;      /* atomic */
    uint64_t dropped;         /* atomic: since the last bp_subscription_missed */
    uint64_t first_dropped;   /* atomic: seq of the first of those (0: none) */
    uint64_t dropped_total;   /* atomic */
    uint64_t delivered_total; /* owner only */
};

bp_status bp_subscribe_lossy(bp_store *s, bp_subscription **out, const bp_region *region,
                             uint32_t capacity) {
    if (!out) return bp_err(BP_EINVAL, "bp_subscribe_lossy: out is NULL");
    *out = NULL;
    if (!s || !region) return bp_err(BP_EINVAL, "bp_subscribe_lossy: NULL argument");
    if (capacity == 0 || capacity > BP_SUBSCRIPTION_MAX)
        return bp_err(BP_EINVAL, "bp_subscribe_lossy: capacity %u out of range 1..%u", capacity,
                      BP_SUBSCRIPTION_MAX);
    bp_subscription *sub = calloc(1, sizeof *sub);
    if (!sub) return bp_err(BP_ENOMEM, "bp_subscribe_lossy: out of memory");
    bp_status rc = bp_rfilter_init(&sub->rf, region);
    if (rc) {
        free(sub);
        return rc;
    }
    sub->s = s;
    sub->cap = capacity;
    sub->ring = malloc((size_t)capacity * sizeof *sub->ring);
    bp_deliver_state *d = bp_deliver_of(s);
    bp_store_publish_lock(s);
    if (sub->ring && d->n_subs == d->subs_cap) {
        uint32_t nc = d->subs_cap ? d->subs_cap * 2 : 8;
        bp_subscription **ns = realloc(d->subs, nc * sizeof *ns);
        if (ns) {
            d->subs = ns;
            d->subs_cap = nc;
        }
    }
    bool ok = sub->ring && d->n_subs < d->subs_cap;
    if (ok) d->subs[d->n_subs++] = sub;
    if (ok) /* the store calls the hook on each publish while a subscription exists */
        bp_store_set_publish_hook(s, deliver_notices, d);
    bp_store_publish_unlock(s);
    if (!ok) {
        bp_rfilter_free(&sub->rf);
        free(sub->ring);
        free(sub);
        return bp_err(BP_ENOMEM, "bp_subscribe_lossy: out of memory");
    }
    *out = sub;
    return BP_OK;
}

void bp_unsubscribe(bp_subscription *sub) {
    if (!sub) return;
    bp_store *s = sub->s;
    bp_deliver_state *d = bp_deliver_of(s);
    bp_store_publish_lock(s); /* the publisher holds it while it pushes */
    for (uint32_t i = 0; i < d->n_subs; i++)
        if (d->subs[i] == sub) {
            d->subs[i] = d->subs[--d->n_subs];
            break;
        }
    if (!d->n_subs) bp_store_set_publish_hook(s, NULL, NULL);
    bp_store_publish_unlock(s);
    bp_rfilter_free(&sub->rf);
    free(sub->ring);
    free(sub);
}

/* The store's publish hook (set while a subscription exists; the publish lock is held):
 * queue notices of seqs from..to for the subscriptions. */
static void deliver_notices(void *ctx, bp_store *s, uint64_t from, uint64_t to) {
    bp_deliver_state *d = ctx;
    for (uint64_t seq = from; seq <= to; seq++) {
        bool built = false;
        bp_notice nt = BP_NOTICE_INIT;
        for (uint32_t i = 0; i < d->n_subs; i++) {
            bp_subscription *sub = d->subs[i];
            if (!bp_store_seq_match(s, seq, &sub->rf)) continue;
            uint64_t head = sub->head; /* only this thread writes it */
            if (head - __atomic_load_n(&sub->tail, __ATOMIC_ACQUIRE) >= sub->cap) {
                __atomic_fetch_add(&sub->dropped, 1, __ATOMIC_RELAXED);
                __atomic_fetch_add(&sub->dropped_total, 1, __ATOMIC_RELAXED);
                uint64_t zero = 0;
                __atomic_compare_exchange_n(&sub->first_dropped, &zero, seq, false,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                continue;
            }
            if (!built) {
                bp_store_notice(s, seq, &nt);
                built = true;
            }
            sub->ring[head % sub->cap] = nt;
            __atomic_store_n(&sub->head, head + 1, __ATOMIC_SEQ_CST);
        }
    }
}

static bool queue_nonempty(void *arg) {
    bp_subscription *sub = arg;
    return __atomic_load_n(&sub->head, __ATOMIC_SEQ_CST) != sub->tail;
}

bp_status bp_subscription_next(bp_subscription *sub, bp_notice *out, uint32_t timeout_ms) {
    if (!sub || !out) return bp_err(BP_EINVAL, "bp_subscription_next: NULL argument");
    BP_SIZE_CHECK("bp_subscription_next", out, bp_notice, BP_NOTICE_INIT);
    if (!queue_nonempty(sub) &&
        (timeout_ms == 0 || !bp_wait_until(sub->s, queue_nonempty, sub,
                                           bp_pf_mono_us() + (uint64_t)timeout_ms * 1000)))
        return bp_err(BP_ETIMEDOUT, "subscription: no notice within %u ms", timeout_ms);
    *out = sub->ring[sub->tail % sub->cap];
    out->struct_size = sizeof *out;
    __atomic_store_n(&sub->tail, sub->tail + 1, __ATOMIC_RELEASE);
    sub->delivered_total++;
    return BP_OK;
}

void bp_subscription_missed(bp_subscription *sub, uint64_t *count, uint64_t *from_seq) {
    uint64_t from = sub ? __atomic_exchange_n(&sub->first_dropped, 0, __ATOMIC_RELAXED) : 0;
    uint64_t n = sub ? __atomic_exchange_n(&sub->dropped, 0, __ATOMIC_RELAXED) : 0;
    if (count) *count = n;
    if (from_seq) *from_seq = from;
}

bp_status bp_subscription_stats_get(const bp_subscription *sub, bp_subscription_stats *out) {
    if (out)
        BP_SIZE_CHECK("bp_subscription_stats_get", out, bp_subscription_stats,
                      BP_SUBSCRIPTION_STATS_INIT);
    if (out) BP_OUT_RESET(out, bp_subscription_stats);
    if (!sub || !out) return bp_err(BP_EINVAL, "bp_subscription_stats_get: NULL argument");
    out->delivered = sub->delivered_total;
    out->dropped = __atomic_load_n(&sub->dropped_total, __ATOMIC_RELAXED);
    out->depth = (uint32_t)(__atomic_load_n(&sub->head, __ATOMIC_ACQUIRE) - sub->tail);
    out->capacity = sub->cap;
    return BP_OK;
}

/* [publish lock held] The subscriptions' figures into out (what another thread than their
 * owners may read: the atomics). */
static void subs_figures(const bp_deliver_state *d, bp_delivery_stats *out) {
    out->subscriptions = d->n_subs;
    for (uint32_t i = 0; i < d->n_subs; i++) {
        bp_subscription *sub = d->subs[i];
        out->queued += __atomic_load_n(&sub->head, __ATOMIC_ACQUIRE) -
                       __atomic_load_n(&sub->tail, __ATOMIC_ACQUIRE);
        out->dropped += __atomic_load_n(&sub->dropped_total, __ATOMIC_RELAXED);
    }
}

/* The words of DIR/LIVE's module figures that are the delivery layer's (bp_store_module
 * .on_figures): what a reader of another process adds to its own bp_delivery_stats. */
enum { FIG_SUBS, FIG_QUEUED, FIG_DROPPED, FIG_WORKERS, FIG_LAG, FIG_POISON };

bp_status bp_delivery_stats_get(bp_store *s, bp_delivery_stats *out) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_delivery_stats_get: NULL argument");
    BP_SIZE_CHECK("bp_delivery_stats_get", out, bp_delivery_stats, BP_DELIVERY_STATS_INIT);
    BP_OUT_RESET(out, bp_delivery_stats);
    bp_deliver_state *d = bp_deliver_of(s);
    bp_store_publish_lock(s); /* the subscription list */
    subs_figures(d, out);
    bp_store_publish_unlock(s);
    bp_workers_lag(s, &out->workers, &out->lag_events_max);
    out->poison_skipped = bp_workers_poison_skipped(s);
    uint64_t w[BP_STORE_MOD_FIGS]; /* a reader: the live writer's, added */
    if (bp_store_read_only(s) && bp_store_writer_mod_figures(s, w)) {
        out->subscriptions += (uint32_t)w[FIG_SUBS];
        out->queued += w[FIG_QUEUED];
        out->dropped += w[FIG_DROPPED];
        out->workers += (uint32_t)w[FIG_WORKERS];
        if (w[FIG_LAG] > out->lag_events_max) out->lag_events_max = w[FIG_LAG];
        out->poison_skipped += w[FIG_POISON];
    }
    return BP_OK;
}

/* ------------------------------------------------------------ the module */

static bp_status deliver_open(bp_store *s, const bp_open_options *o, void **state) {
    (void)o;
    bp_deliver_state *d = calloc(1, sizeof *d);
    if (!d) return bp_err(BP_ENOMEM, "%s: out of memory", bp_store_dir(s));
    pthread_mutex_init(&d->mu, NULL);
    *state = d;
    return BP_OK;
}

static void deliver_stop(bp_store *s, void *state) {
    (void)state;
    bp_worker_stop_all(s); /* they persist their positions */
}

static void deliver_free(void *state) {
    bp_deliver_state *d = state;
    free(d->subs); /* subscriptions still open are the caller's leak (deliver.h) */
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* The writer, holding the publish lock: its figures for readers of other processes. The
 * workers' list lock may be held by a thread that appends: a busy one leaves the figures of
 * the last round. */
static void deliver_figures(bp_store *s, void *state, uint64_t *figs) {
    bp_deliver_state *d = state;
    bp_delivery_stats st = BP_DELIVERY_STATS_INIT;
    subs_figures(d, &st);
    if (bp_workers_lag_try(s, &st.workers, &st.lag_events_max)) {
        d->fig_workers = st.workers;
        d->fig_lag = st.lag_events_max;
    }
    figs[FIG_SUBS] = st.subscriptions;
    figs[FIG_QUEUED] = st.queued;
    figs[FIG_DROPPED] = st.dropped;
    figs[FIG_WORKERS] = d->fig_workers;
    figs[FIG_LAG] = d->fig_lag;
    figs[FIG_POISON] = bp_workers_poison_skipped(s);
}

const bp_store_module bp_deliver_module = {"deliver",    deliver_open, deliver_stop,   NULL,
                                           deliver_free, NULL,         deliver_figures};
