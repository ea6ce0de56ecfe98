/*
 * Cursor workers: a thread that delivers the events of a region to a handler,
 * in order, at least once, with retries, poison handling and (with a
 * checkpoint id) a position persisted in DIR/cursors/ID.ckpt after the
 * handler succeeded.
 */
#include "deliver/deliver_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define POLL_MS 100

/* Invariants: position is the global_seq of the last event handled (or skipped as poison);
 * ckpt_pos <= position is the one persisted; passed >= position: every event of the region
 * up to it is handled (events outside the region and holes count as passed); the thread
 * alone writes them (atomically, so that stats can read them). stop is atomic, set before
 * bp_wake_waiters.
 * s is NULL once bp_store_close stopped the worker (detached: only bp_worker_stop, stats
 * and bp_worker_wait may use it then; c is freed). */
struct bp_worker {
    bp_store *s;
    bp_worker_fn fn;
    bp_worker_batch_fn batch_fn; /* or, for a batch worker, this (fn is NULL) */
    void *ctx;
    void (*cleanup)(void *ctx); /* frees ctx after the thread is joined (reactors), or NULL */
    bp_worker_config cfg;
    char id[64]; /* checkpoint id, or "" */
    char dir[4096];
    bp_file idlock; /* with an id: DIR/cursors/ID.lock, held while it runs (any process) */
    bp_cursor *c;
    pthread_t thread;
    bool stop;    /* atomic */
    bool running; /* atomic */
    bp_status err;
    char err_msg[512];
    uint64_t position, ckpt_pos, handled, retries, poisoned, passed, skipped; /* atomic */
    pthread_mutex_t smu; /* the last skipped event: */
    uint64_t skip_seq;   /* [smu] */
    char skip_msg[256];  /* [smu] */
    uint32_t since_ckpt;
    bp_gaps gaps;           /* measured when the handler is called */
    struct bp_worker *next; /* [the deliver state's mu] its workers */
};

static bool stop_requested(bp_worker *w) {
    return __atomic_load_n(&w->stop, __ATOMIC_SEQ_CST);
}

static bool stopping(void *arg) {
    return stop_requested(arg);
}

bp_status bp_cursorck_save(bp_fault *fault, const char *dir, const char *name, uint64_t position,
                           const bp_id *id) {
    uint8_t buf[BP_CURSORCK_SIZE];
    bp_cursorck_encode(buf, position, id);
    int e = bp_pf_mkdir(dir);
    if (!e) e = bp_pf_write_atomic(fault, dir, name, buf, sizeof buf);
    if (e) return bp_err_sys(BP_EIO, e, "%s/%s: cannot write the checkpoint", dir, name);
    return BP_OK;
}

bp_status bp_cursorck_load(const char *path, uint64_t *position, bp_id *id, bool *found) {
    *found = false;
    uint8_t *buf;
    size_t n;
    int e = bp_pf_read_all(path, &buf, &n);
    if (e == -ENOENT) return BP_OK;
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot read the checkpoint", path);
    bp_status rc = bp_cursorck_decode(buf, n, position, id);
    free(buf);
    if (rc) return bp_err(rc, "%s: %s", path, bp_last_error());
    *found = true;
    return BP_OK;
}

static bp_status write_ckpt(bp_worker *w, uint64_t position, const bp_id *id) {
    char name[80];
    snprintf(name, sizeof name, "%s.ckpt", w->id);
    bp_status rc = bp_cursorck_save(bp_store_fault(w->s), w->dir, name, position, id);
    if (rc) return rc;
    __atomic_store_n(&w->ckpt_pos, position, __ATOMIC_RELAXED);
    w->since_ckpt = 0;
    return BP_OK;
}

/* Take DIR/cursors/ID.lock: one running worker per checkpoint id across processes (a
 * read-only handle's workers too: a checkpointed worker writes its checkpoint, nothing
 * else). The kernel drops the lock when the process dies. */
static bp_status lock_id(bp_worker *w) {
    char path[4200];
    int e = bp_pf_mkdir(w->dir);
    if (e < 0)
        return bp_err_sys(e == -EROFS || e == -EACCES ? BP_EREADONLY : BP_EIO, e,
                          "%s: worker '%s' cannot keep its checkpoint there", w->dir, w->id);
    snprintf(path, sizeof path, "%s/%s.lock", w->dir, w->id);
    long holder = 0;
    e = bp_pf_lock(&w->idlock, path, &holder);
    if (e == -EWOULDBLOCK)
        return bp_err(BP_EBUSY, "worker '%s' is running already on this store (process %ld)", w->id,
                      holder);
    if (e)
        return bp_err_sys(e == -EROFS || e == -EACCES ? BP_EREADONLY : BP_EIO, e,
                          "%s: worker '%s' cannot take its lock", path, w->id);
    return BP_OK;
}

/* Read DIR/cursors/ID.ckpt: *position (0 and false when there is none). */
static bp_status read_ckpt(bp_worker *w, uint64_t *position, bool *found) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.ckpt", w->dir, w->id);
    bp_id id;
    bp_status rc = bp_cursorck_load(path, position, &id, found);
    if (rc || !*found || *position == 0) return rc;
    bp_event *ev; /* the checkpoint must name an event of this store, at its position */
    rc = bp_get(w->s, &ev, &id);
    bool same = !rc && ev->global_seq == *position;
    if (!rc) bp_event_free(ev);
    if (rc == BP_ENOTFOUND) /* or one a compaction removed: its seq is a hole now */
        same = bp_store_seq_is_hole(w->s, *position);
    if (!same)
        return bp_err(BP_ECORRUPT,
                      "%s: position %llu names an event this store does not have there", path,
                      (unsigned long long)*position);
    return BP_OK;
}

/* How far every event of the region is handled: the cursor's mark, or the last event
 * handled (or skipped) when that is further. */
static uint64_t passed_of(bp_worker *w) {
    uint64_t passed = __atomic_load_n(&w->passed, __ATOMIC_SEQ_CST);
    uint64_t position = __atomic_load_n(&w->position, __ATOMIC_RELAXED);
    return passed > position ? passed : position;
}

static void fail(bp_worker *w, bp_status rc) {
    w->err = rc;
    snprintf(w->err_msg, sizeof w->err_msg, "%s", bp_last_error());
}

/* Deliver one event until it is handled, poisoned or the worker is stopped. Returns
 * BP_OK when the position may move past it, BP_DONE when stopped before, else the error
 * that stops the worker. */
static bp_status deliver(bp_worker *w, const bp_event *ev) {
    bp_delivery d;
    d.ev = ev;
    char idtext[37];
    bp_id_format(&ev->event_id, idtext);
    snprintf(d.idem_key, sizeof d.idem_key, "%s:%s", w->id[0] ? w->id : "local", idtext);
    uint32_t wait = w->cfg.backoff_ms;
    for (d.attempt = 1;; d.attempt++) {
        bp_err_clear();
        bp_status rc = w->fn(w->ctx, &d);
        if (rc == BP_OK) return BP_OK;
        if (rc > 0) rc = BP_EINVAL;             /* a handler returns BP_OK or an error */
        if (d.attempt >= w->cfg.max_attempts) { /* poison */
            char msg[400];
            snprintf(msg, sizeof msg, "%s", bp_last_error());
            __atomic_fetch_add(&w->poisoned, 1, __ATOMIC_RELAXED);
            if (w->cfg.on_poison) w->cfg.on_poison(w->ctx, ev, rc, d.attempt);
            if (w->cfg.poison == BP_POISON_SKIP) {
                pthread_mutex_lock(&w->smu);
                w->skip_seq = ev->global_seq;
                snprintf(w->skip_msg, sizeof w->skip_msg, "%s (%s)", msg[0] ? msg : "-",
                         bp_strerror(rc));
                pthread_mutex_unlock(&w->smu);
                __atomic_fetch_add(&w->skipped, 1, __ATOMIC_RELAXED);
                __atomic_fetch_add(&bp_deliver_of(w->s)->poison_skipped, 1, __ATOMIC_RELAXED);
                return BP_OK;
            }
            return bp_err(rc, "worker %s: event %llu failed %u times%s%s",
                          w->id[0] ? w->id : "(local)", (unsigned long long)ev->global_seq,
                          d.attempt, msg[0] ? ": " : "", msg);
        }
        __atomic_fetch_add(&w->retries, 1, __ATOMIC_RELAXED);
        if (bp_wait_until(w->s, stopping, w, bp_pf_mono_us() + (uint64_t)wait * 1000))
            return BP_DONE;
        wait = wait > w->cfg.backoff_max_ms / 2 ? w->cfg.backoff_max_ms : wait * 2;
    }
}

/* A batch worker's loop (deliver_impl.h: pipelined one batch deep). In flight: the last batch
 * handed over (fly_n events, the last fly_seq / fly_id), not yet vouched for; while one is,
 * the cursor does not raise the worker's mark (it would pass events not yet done). Returns
 * BP_OK when stopped, else the error that stops the worker. */
static bp_status batch_loop(bp_worker *w, const bp_event **evs, bp_id *last_id) {
    size_t fly_n = 0;
    uint64_t fly_seq = 0;
    bp_id fly_id = {{0}};
    uint32_t wait = w->cfg.backoff_ms, attempt = 1;
    for (;;) {
        bool stop = stop_requested(w);
        size_t n = 0;
        if (!stop) {
            bp_status rc =
                bp_cursor_next_stop(w->c, evs, w->cfg.batch, &n, fly_n ? 0 : POLL_MS, &w->stop);
            if (rc == BP_DONE || rc == BP_ETIMEDOUT) /* finished, or nothing new yet */
                n = 0;
            else if (rc)
                return rc;
        }
        if (!n && !fly_n) {
            if (stop) return BP_OK;
            continue;
        }
        bp_err_clear();
        bp_status rc = w->batch_fn(w->ctx, n ? evs : NULL, n, attempt);
        if (rc) { /* forget what is in flight: hand it over again from the position */
            __atomic_fetch_add(&w->retries, 1, __ATOMIC_RELAXED);
            bp_cursor_rewind(w->c, __atomic_load_n(&w->position, __ATOMIC_RELAXED));
            bp_cursor_set_passed(w->c, &w->passed);
            fly_n = 0;
            if (stop || bp_wait_until(w->s, stopping, w, bp_pf_mono_us() + (uint64_t)wait * 1000))
                return BP_OK; /* stopped: the position stays before what failed */
            wait = wait > w->cfg.backoff_max_ms / 2 ? w->cfg.backoff_max_ms : wait * 2;
            attempt++;
            continue;
        }
        wait = w->cfg.backoff_ms;
        attempt = 1;
        if (fly_n) { /* vouched for: move past it */
            __atomic_store_n(&w->position, fly_seq, __ATOMIC_RELAXED);
            __atomic_fetch_add(&w->handled, fly_n, __ATOMIC_RELAXED);
            *last_id = fly_id;
            w->since_ckpt += (uint32_t)fly_n;
            /* persisted every checkpoint_every events, and whenever it caught up */
            if (w->id[0] && (w->since_ckpt >= w->cfg.checkpoint_every || !n) &&
                (rc = write_ckpt(w, fly_seq, &fly_id)))
                return rc;
        }
        fly_n = n;
        if (n) {
            fly_seq = evs[n - 1]->global_seq;
            fly_id = evs[n - 1]->event_id;
            bp_cursor_set_passed(w->c, NULL);
        } else { /* nothing in flight: everything handed out is done */
            bp_cursor_set_passed(w->c, &w->passed);
            bp_cursor_mark_passed(w->c);
        }
    }
}

static void *worker_main(void *arg) {
    bp_worker *w = arg;
    const bp_event **evs = malloc(w->cfg.batch * sizeof *evs);
    bp_status rc = evs ? BP_OK : bp_err(BP_ENOMEM, "worker: out of memory");
    bp_id last_id = {{0}};
    if (!rc && w->batch_fn && (rc = batch_loop(w, evs, &last_id))) fail(w, rc);
    while (!rc && !w->batch_fn && !stop_requested(w)) {
        size_t n;
        rc = bp_cursor_next_stop(w->c, evs, w->cfg.batch, &n, POLL_MS, &w->stop);
        if (rc == BP_DONE || rc == BP_ETIMEDOUT) { /* finished, or nothing new yet */
            rc = BP_OK;
            continue;
        }
        size_t i;
        for (i = 0; !rc && i < n; i++) {
            if (i > 0 && stop_requested(w)) break;
            rc = deliver(w, evs[i]);
            if (rc == BP_DONE) {
                rc = BP_OK;
                break;
            }
            if (rc) break;
            __atomic_store_n(&w->position, evs[i]->global_seq, __ATOMIC_RELAXED);
            __atomic_fetch_add(&w->handled, 1, __ATOMIC_RELAXED);
            last_id = evs[i]->event_id;
            bp_gaps_observe(&w->gaps, evs[i]);
            if (w->id[0] && ++w->since_ckpt >= w->cfg.checkpoint_every)
                rc = write_ckpt(w, evs[i]->global_seq, &last_id);
        }
        if (rc)
            fail(w, rc);
        else if (i == n)
            bp_cursor_mark_passed(w->c);
        if (!rc && stop_requested(w)) break;
    }
    if (!w->err && !rc && w->id[0] && w->position > w->ckpt_pos &&
        (rc = write_ckpt(w, w->position, &last_id)))
        fail(w, rc);
    free(evs);
    __atomic_store_n(&w->running, false, __ATOMIC_SEQ_CST);
    bp_publish_notify(w->s); /* bp_worker_wait returns */
    return NULL;
}

bp_status bp_cursor_worker(bp_store *s, bp_worker **out, const bp_region *region, bp_worker_fn fn,
                           void *ctx, const bp_worker_config *cfg) {
    return bp_worker_start(s, region, fn, ctx, NULL, cfg, out);
}

static bp_status start_any(bp_store *s, const bp_region *region, bp_worker_fn fn,
                           bp_worker_batch_fn batch_fn, void *ctx, void (*cleanup)(void *ctx),
                           const bp_worker_config *cfg, bp_worker **out);

bp_status bp_worker_start(bp_store *s, const bp_region *region, bp_worker_fn fn, void *ctx,
                          void (*cleanup)(void *ctx), const bp_worker_config *cfg,
                          bp_worker **out) {
    return start_any(s, region, fn, NULL, ctx, cleanup, cfg, out);
}

bp_status bp_worker_start_batch(bp_store *s, const bp_region *region, bp_worker_batch_fn fn,
                                void *ctx, void (*cleanup)(void *ctx), const bp_worker_config *cfg,
                                bp_worker **out) {
    return start_any(s, region, NULL, fn, ctx, cleanup, cfg, out);
}

static bp_status start_any(bp_store *s, const bp_region *region, bp_worker_fn fn,
                           bp_worker_batch_fn batch_fn, void *ctx, void (*cleanup)(void *ctx),
                           const bp_worker_config *cfg, bp_worker **out) {
    if (!out) return bp_err(BP_EINVAL, "bp_cursor_worker: out is NULL");
    *out = NULL;
    if (!s || !region || (!fn && !batch_fn))
        return bp_err(BP_EINVAL, "bp_cursor_worker: NULL argument");
    bp_worker_config def = BP_WORKER_CONFIG_INIT;
    if (!cfg) cfg = &def;
    BP_SIZE_CHECK("worker", cfg, bp_worker_config, BP_WORKER_CONFIG_INIT);
    bp_status nrc;
    if (cfg->checkpoint_id && (nrc = bp_name_validate("worker checkpoint id", cfg->checkpoint_id)))
        return nrc;
    if (cfg->batch > 4096) return bp_err(BP_EINVAL, "worker batch %u above 4096", cfg->batch);
    if (cfg->poison != BP_POISON_STOP && cfg->poison != BP_POISON_SKIP)
        return bp_err(BP_EINVAL, "worker: unknown poison policy %d", (int)cfg->poison);
    bp_worker *w = calloc(1, sizeof *w);
    if (!w) return bp_err(BP_ENOMEM, "bp_cursor_worker: out of memory");
    w->s = s;
    w->fn = fn;
    w->batch_fn = batch_fn;
    w->ctx = ctx;
    w->cleanup = cleanup;
    w->cfg = *cfg;
    w->cfg.checkpoint_id = NULL;
    if (!w->cfg.batch) w->cfg.batch = 64;
    if (!w->cfg.checkpoint_every) w->cfg.checkpoint_every = 1;
    if (!w->cfg.max_attempts) w->cfg.max_attempts = 5;
    if (!w->cfg.backoff_ms) w->cfg.backoff_ms = 10;
    if (!w->cfg.backoff_max_ms) w->cfg.backoff_max_ms = 1000;
    if (cfg->checkpoint_id) snprintf(w->id, sizeof w->id, "%s", cfg->checkpoint_id);
    snprintf(w->dir, sizeof w->dir, "%s/cursors", bp_store_dir(s));
    bp_gaps_init(&w->gaps);
    pthread_mutex_init(&w->smu, NULL);
    w->gaps.threshold_ms = cfg->gap_threshold_ms;
    uint64_t start = cfg->start_after;
    bool found = false;
    bp_status rc = BP_OK;
    bp_deliver_state *d = bp_deliver_of(s);
    pthread_mutex_lock(&d->mu); /* one running worker per checkpoint id */
    for (bp_worker *o = d->workers; w->id[0] && o; o = o->next)
        if (strcmp(o->id, w->id) == 0)
            rc = bp_err(BP_EBUSY, "worker '%s' is running already on this store", w->id);
    if (!rc) {
        w->next = d->workers;
        d->workers = w;
    }
    pthread_mutex_unlock(&d->mu);
    w->idlock = (bp_file)BP_FILE_INIT;
    if (!rc && w->id[0]) rc = lock_id(w);
    if (!rc && w->id[0] && (rc = read_ckpt(w, &start, &found)) == BP_OK && found)
        w->ckpt_pos = start;
    if (!rc) rc = bp_cursor_open(s, &w->c, region, start);
    if (!rc) {
        w->position = start;
        w->passed = start;
        bp_cursor_set_passed(w->c, &w->passed);
        w->running = true;
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e) rc = bp_err_sys(BP_ENOMEM, -e, "bp_cursor_worker: cannot start a thread");
    }
    if (rc) {
        w->running = false;
        pthread_mutex_lock(&d->mu);
        for (bp_worker **pp = &d->workers; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        pthread_mutex_unlock(&d->mu);
        bp_cursor_free(w->c);
        bp_pf_unlock(&w->idlock);
        bp_gaps_destroy(&w->gaps);
        pthread_mutex_destroy(&w->smu);
        free(w);
        return rc;
    }
    *out = w;
    return BP_OK;
}

/* Stop the thread, join it and release what ties the worker to its store (the cursor, the
 * cleanup of ctx); the handle stays for bp_worker_stop. */
static void halt(bp_worker *w) {
    bp_store *s = w->s;
    bp_deliver_state *d = bp_deliver_of(s);
    pthread_mutex_lock(&d->mu);
    for (bp_worker **pp = &d->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_mutex_unlock(&d->mu);
    __atomic_store_n(&w->stop, true, __ATOMIC_SEQ_CST);
    bp_wake_waiters(s); /* a wait in progress tests stop again */
    pthread_join(w->thread, NULL);
    if (w->cleanup) w->cleanup(w->ctx);
    bp_cursor_free(w->c);
    w->c = NULL;
    bp_pf_unlock(&w->idlock); /* (after its last checkpoint) */
    __atomic_store_n(&w->s, NULL, __ATOMIC_SEQ_CST);
}

bp_status bp_worker_stop(bp_worker *w) {
    if (!w) return BP_OK;
    if (__atomic_load_n(&w->s, __ATOMIC_SEQ_CST)) halt(w); /* else bp_store_close did */
    bp_status rc = w->err ? bp_err(w->err, "%s", w->err_msg) : BP_OK;
    bp_gaps_destroy(&w->gaps);
    pthread_mutex_destroy(&w->smu);
    free(w);
    return rc;
}

bp_status bp_worker_stats_get(bp_worker *w, bp_worker_stats *out) {
    if (out) BP_SIZE_CHECK("bp_worker_stats_get", out, bp_worker_stats, BP_WORKER_STATS_INIT);
    if (out) BP_OUT_RESET(out, bp_worker_stats);
    if (!w || !out) return bp_err(BP_EINVAL, "bp_worker_stats_get: NULL argument");
    out->position = __atomic_load_n(&w->position, __ATOMIC_RELAXED);
    out->handled = __atomic_load_n(&w->handled, __ATOMIC_RELAXED);
    out->retries = __atomic_load_n(&w->retries, __ATOMIC_RELAXED);
    out->poisoned = __atomic_load_n(&w->poisoned, __ATOMIC_RELAXED);
    out->running = __atomic_load_n(&w->running, __ATOMIC_ACQUIRE);
    out->passed = passed_of(w);
    bp_store *s = __atomic_load_n(&w->s, __ATOMIC_SEQ_CST);
    uint64_t pub = s ? bp_store_published(s) : 0;
    out->lag_events = pub > out->passed ? pub - out->passed : 0;
    out->skipped = __atomic_load_n(&w->skipped, __ATOMIC_RELAXED);
    pthread_mutex_lock(&w->smu);
    out->last_skipped_seq = w->skip_seq;
    snprintf(out->last_skipped_error, sizeof out->last_skipped_error, "%s", w->skip_msg);
    pthread_mutex_unlock(&w->smu);
    return BP_OK;
}

typedef struct wait_arg {
    bp_worker *w;
    uint64_t seq;
} wait_arg;

static bool passed_or_stopped(void *arg) {
    wait_arg *a = arg;
    return __atomic_load_n(&a->w->passed, __ATOMIC_SEQ_CST) >= a->seq ||
           !__atomic_load_n(&a->w->running, __ATOMIC_SEQ_CST);
}

bp_status bp_worker_wait(bp_worker *w, uint64_t seq, uint32_t timeout_ms) {
    if (!w) return bp_err(BP_EINVAL, "bp_worker_wait: NULL worker");
    const char *name = w->id[0] ? w->id : "(local)";
    wait_arg a = {w, seq};
    bp_store *s = __atomic_load_n(&w->s, __ATOMIC_SEQ_CST);
    if (s) bp_wait_until(s, passed_or_stopped, &a, bp_pf_mono_us() + (uint64_t)timeout_ms * 1000);
    uint64_t passed = __atomic_load_n(&w->passed, __ATOMIC_SEQ_CST);
    if (passed >= seq) return BP_OK;
    if (!__atomic_load_n(&w->running, __ATOMIC_SEQ_CST)) {
        if (w->err)
            return bp_err(w->err, "worker %s stopped short of global_seq %llu: %s", name,
                          (unsigned long long)seq, w->err_msg);
        return bp_err(BP_ECANCELED,
                      "worker %s was stopped (bp_worker_stop or bp_store_close) short of "
                      "global_seq %llu; it had handled its region up to %llu",
                      name, (unsigned long long)seq, (unsigned long long)passed);
    }
    return bp_err(BP_ETIMEDOUT,
                  "worker %s has handled its region up to global_seq %llu after %u ms, short of "
                  "%llu",
                  name, (unsigned long long)passed, timeout_ms, (unsigned long long)seq);
}

size_t bp_worker_take_gaps(bp_worker *w, bp_gap *out, size_t max) {
    return w && out ? bp_gaps_take(&w->gaps, out, max) : 0;
}

uint64_t bp_workers_poison_skipped(bp_store *s) {
    return __atomic_load_n(&bp_deliver_of(s)->poison_skipped, __ATOMIC_RELAXED);
}

void bp_worker_stop_all(bp_store *s) {
    bp_deliver_state *d = bp_deliver_of(s);
    for (;;) {
        pthread_mutex_lock(&d->mu);
        bp_worker *w = d->workers;
        pthread_mutex_unlock(&d->mu);
        if (!w) return;
        halt(w);
    }
}

/* [d->mu] */
static void lag_locked(bp_store *s, bp_deliver_state *d, uint32_t *count, uint64_t *lag_max) {
    *count = 0;
    *lag_max = 0;
    uint64_t pub = bp_store_published(s);
    for (bp_worker *w = d->workers; w; w = w->next) {
        uint64_t pos = passed_of(w);
        (*count)++;
        if (pub > pos && pub - pos > *lag_max) *lag_max = pub - pos;
    }
}

void bp_workers_lag(bp_store *s, uint32_t *count, uint64_t *lag_max) {
    bp_deliver_state *d = bp_deliver_of(s);
    pthread_mutex_lock(&d->mu);
    lag_locked(s, d, count, lag_max);
    pthread_mutex_unlock(&d->mu);
}

bool bp_workers_lag_try(bp_store *s, uint32_t *count, uint64_t *lag_max) {
    bp_deliver_state *d = bp_deliver_of(s);
    if (pthread_mutex_trylock(&d->mu)) return false;
    lag_locked(s, d, count, lag_max);
    pthread_mutex_unlock(&d->mu);
    return true;
}

bp_status bp_checkpoints_list(bp_store *s, bp_checkpoint_info *out, size_t max, size_t *n) {
    if (!s || !n || (max && !out)) return bp_err(BP_EINVAL, "bp_checkpoints_list: NULL argument");
    if (max) BP_SIZE_CHECK("bp_checkpoints_list", out, bp_checkpoint_info, BP_CHECKPOINT_INFO_INIT);
    *n = 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/cursors", bp_store_dir(s));
    char **names = NULL;
    size_t count = 0;
    int e = bp_pf_list(dir, ".ckpt", &names, &count);
    if (e == -ENOENT) return BP_OK;
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot list", dir);
    uint64_t pub = bp_store_published(s);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(names[i]) - strlen(".ckpt");
        if (!len || len > 63) continue; /* not a checkpoint id: not ours */
        if (*n < max) {
            bp_checkpoint_info *ci = &out[*n];
            BP_OUT_RESET(ci, bp_checkpoint_info);
            memcpy(ci->id, names[i], len);
            char path[4300];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            bp_id id;
            bool found;
            ci->valid = bp_cursorck_load(path, &ci->position, &id, &found) == BP_OK && found;
            if (!ci->valid) ci->position = 0;
            ci->lag_events = ci->valid && pub > ci->position ? pub - ci->position : 0;
        }
        (*n)++;
    }
    bp_pf_list_free(names, count);
    if (*n > max)
        return bp_err(BP_ETOOBIG, "%s: %zu checkpoints, room for %zu (the first %zu filled)", dir,
                      *n, max, max);
    bp_err_clear();
    return BP_OK;
}
