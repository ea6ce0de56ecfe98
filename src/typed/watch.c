/*
 * Projection watchers: one thread per watch waits for the store's publish
 * notification, re-projects (incrementally, through the cache) and calls the
 * watcher with the new state when it changed. Updates coalesce: whatever was
 * published while the callback ran is folded into the next call.
 */
#include "typed/typed_impl.h"

#include <stdio.h>
#include <stdlib.h>

/* How long a watcher sleeps without a notification before it looks anyway. */
#define WATCH_POLL_US 200000

/* Invariant: linked into bp_typed_of(s)->watches (under its watch_mu) from start until stop
 * (or bp_store_close, which joins the thread and sets s to NULL: the handle waits for
 * bp_watch_stop); state/last are only touched by the thread. */
struct bp_watch {
    bp_store *s;
    const bp_projection *p;
    char entity[BP_COORD_MAX + 1];
    bp_watch_fn fn;
    void *ctx;
    pthread_t thread;
    bool stop;     /* atomic: set before bp_wake_waiters */
    uint64_t seen; /* the watermark of the last look (thread only) */
    bp_status err; /* the error that ended the thread early; read after join */
    char err_msg[512];
    uint8_t *state, *last; /* p->state_size each */
    bp_watch *next;        /* [watch_mu] */
};

static bool moved_or_stopped(void *arg) {
    bp_watch *w = arg;
    return __atomic_load_n(&w->stop, __ATOMIC_SEQ_CST) || bp_store_published(w->s) != w->seen;
}

/* Wait until the publish watermark moves past w->seen or the watch is stopped. */
static bool wait_publish(bp_watch *w) {
    while (!bp_wait_until(w->s, moved_or_stopped, w, bp_pf_mono_us() + WATCH_POLL_US)) {
    }
    bool stop = __atomic_load_n(&w->stop, __ATOMIC_SEQ_CST);
    w->seen = bp_store_published(w->s);
    return !stop;
}

static void *watch_main(void *arg) {
    bp_watch *w = arg;
    size_t n = w->p->state_size;
    w->seen = bp_store_published(w->s);
    bp_project_info info = BP_PROJECT_INFO_INIT;
    bp_status rc = bp_project(w->s, w->state, &info, w->p, w->entity, BP_CONSISTENT);
    if (!rc) {
        w->fn(w->ctx, w->state, info.clock);
        memcpy(w->last, w->state, n);
    }
    uint64_t clock = info.clock;
    while (!rc && wait_publish(w)) {
        rc = bp_project_if_changed(w->s, w->state, &clock, w->p, w->entity);
        if (rc == BP_UNCHANGED) {
            rc = BP_OK;
            continue;
        }
        if (!rc && memcmp(w->state, w->last, n) != 0) {
            w->fn(w->ctx, w->state, clock);
            memcpy(w->last, w->state, n);
        }
    }
    if (rc) {
        w->err = rc;
        snprintf(w->err_msg, sizeof w->err_msg, "%s", bp_last_error());
    }
    return NULL;
}

bp_status bp_watch_projection(bp_store *s, bp_watch **out, const bp_projection *p,
                              const char *entity, bp_watch_fn fn, void *ctx) {
    if (!out) return bp_err(BP_EINVAL, "bp_watch_projection: out is NULL");
    *out = NULL;
    if (!s || !fn) return bp_err(BP_EINVAL, "bp_watch_projection: NULL argument");
    /* validate now, on the caller's thread, so that mistakes are reported here */
    bp_status rc = bp_projection_check(p, entity);
    if (rc) return rc;
    bp_watch *w = calloc(1, sizeof *w);
    if (!w) return bp_err(BP_ENOMEM, "bp_watch_projection: out of memory");
    w->state = malloc(p->state_size);
    w->last = malloc(p->state_size);
    if (!w->state || !w->last) {
        free(w->state);
        free(w->last);
        free(w);
        return bp_err(BP_ENOMEM, "bp_watch_projection: out of memory");
    }
    w->s = s;
    w->p = p;
    snprintf(w->entity, sizeof w->entity, "%s", entity);
    w->fn = fn;
    w->ctx = ctx;
    bp_typed_state *t = bp_typed_of(s);
    pthread_mutex_lock(&t->watch_mu);
    w->next = t->watches;
    t->watches = w;
    int e = pthread_create(&w->thread, NULL, watch_main, w);
    if (e) t->watches = w->next;
    pthread_mutex_unlock(&t->watch_mu);
    if (e) {
        free(w->state);
        free(w->last);
        free(w);
        return bp_err_sys(BP_ENOMEM, -e, "bp_watch_projection: cannot start a thread");
    }
    *out = w;
    return BP_OK;
}

/* Stop the thread and join it; the handle stays for bp_watch_stop (s is NULL after). */
static void halt(bp_watch *w) {
    bp_store *s = w->s;
    bp_typed_state *t = bp_typed_of(s);
    pthread_mutex_lock(&t->watch_mu);
    for (bp_watch **pp = &t->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_mutex_unlock(&t->watch_mu);
    __atomic_store_n(&w->stop, true, __ATOMIC_SEQ_CST);
    bp_wake_waiters(s); /* a wait in progress tests stop again */
    pthread_join(w->thread, NULL);
    w->s = NULL;
}

bp_status bp_watch_stop(bp_watch *w) {
    if (!w) return BP_OK;
    if (w->s) halt(w); /* else bp_store_close did */
    bp_status rc =
        w->err ? bp_err(w->err, "watch '%s' of %s stopped: %s", w->p->name, w->entity, w->err_msg)
               : BP_OK;
    free(w->state);
    free(w->last);
    free(w);
    return rc;
}

void bp_watch_stop_all(bp_store *s) {
    bp_typed_state *t = bp_typed_of(s);
    for (;;) {
        pthread_mutex_lock(&t->watch_mu);
        bp_watch *w = t->watches;
        pthread_mutex_unlock(&t->watch_mu);
        if (!w) return;
        halt(w);
    }
}
