/* This library as a benchmark backend.
 *
 * A commit of 1 event is bp_append with the store's durability (BP_DURABLE
 * when the mode syncs per commit, else BP_NO_SYNC); a commit of n > 1 events
 * is bp_append_batch_ex with the same durability. The store assigns its own event
 * ids; they are the keys handed back for get. The open event is turned off so
 * the store holds exactly the harness's events. */
#include "bench.h"

#include <batpak/batpak.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_store {
    bp_store *s;
    bp_batch_options batch; /* the store's durability (BP_DUR_DEFAULT) */
};

static void must(bp_status rc, const char *what) {
    if (rc != BP_OK) bench_die("batpak %s: %s", what, bp_last_error());
}

static const char *be_version(void) {
    return bp_version();
}

static bench_store *be_open(const char *dir, const bench_opts *o) {
    bench_store *st = bench_calloc(1, sizeof *st);
    bp_open_options opts = BP_OPEN_OPTIONS_INIT;
    opts.no_open_event = true;
    opts.durability = o->durable ? BP_DURABLE : BP_NO_SYNC;
    if (o->segment_kb) opts.segment_size = (uint32_t)(o->segment_kb << 10);
    must(bp_store_open(&st->s, dir, &opts), "open");
    st->batch = (bp_batch_options)BP_BATCH_OPTIONS_INIT;
    st->batch.durability.mode = BP_DUR_DEFAULT;
    return st;
}

static void be_append(bench_store *st, const bench_event *evs, size_t n, bench_key *keys) {
    bp_receipt rc[256];
    rc[0].struct_size = sizeof rc[0]; /* the stride; the library fills the rest */
    if (n == 1) {
        must(bp_append(st->s, rc, evs[0].entity, evs[0].scope, evs[0].kind, evs[0].payload,
                       evs[0].payload_len),
             "append");
    } else {
        bp_batch_item items[256];
        if (n > 256) bench_die("batpak: batch larger than 256");
        for (size_t i = 0; i < n; i++)
            items[i] = (bp_batch_item){evs[i].entity,  evs[i].scope,       evs[i].kind,
                                       evs[i].payload, evs[i].payload_len, NULL};
        must(bp_append_batch_ex(st->s, rc, items, n, &st->batch), "append_batch");
    }
    for (size_t i = 0; i < n; i++)
        memcpy(keys[i].b, rc[i].event_id.b, 16);
}

static void be_sync(bench_store *st) {
    must(bp_store_sync(st->s), "sync");
}

static void to_event(const bp_event *e, bench_event *out) {
    out->seq = e->global_seq - 1;
    out->eseq = e->clock - 1;
    out->entity = e->entity;
    out->entity_len = (uint16_t)strlen(e->entity);
    out->scope = e->scope;
    out->scope_len = (uint16_t)strlen(e->scope);
    out->kind = e->kind;
    out->ts = BP_HLC_WALL_MS(e->hlc) * 1000;
    out->id = e->event_id.b;
    out->payload = e->payload;
    out->payload_len = (uint32_t)e->payload_len;
}

static size_t be_get(bench_store *st, const bench_key *key, bench_visit_fn fn, void *ctx) {
    bp_id id;
    bp_event *e;
    memcpy(id.b, key->b, 16);
    if (bp_get(st->s, &e, &id) != BP_OK) return 0;
    bench_event ev;
    to_event(e, &ev);
    fn(ctx, &ev);
    bp_event_free(e);
    return 1;
}

static size_t drain(bp_iter *it, bench_visit_fn fn, void *ctx) {
    const bp_event *e;
    size_t n = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        bench_event ev;
        to_event(e, &ev);
        fn(ctx, &ev);
        n++;
    }
    if (rc != BP_DONE) bench_die("batpak iterate: %s", bp_last_error());
    bp_iter_free(it);
    return n;
}

static size_t be_entity(bench_store *st, const char *entity, unsigned flags, bench_visit_fn fn,
                        void *ctx) {
    bp_iter *it;
    must(bp_stream(st->s, &it, entity, (flags & BENCH_PAYLOAD) ? BP_READ_FULL : BP_READ_INDEX_ONLY),
         "stream");
    return drain(it, fn, ctx);
}

static size_t be_scope(bench_store *st, const char *scope, bench_visit_fn fn, void *ctx) {
    bp_iter *it;
    must(bp_by_scope(st->s, &it, scope, BP_READ_FULL), "by_scope");
    return drain(it, fn, ctx);
}

static size_t be_kind(bench_store *st, uint16_t kind, bench_visit_fn fn, void *ctx) {
    bp_iter *it;
    must(bp_by_kind(st->s, &it, kind, BP_READ_FULL), "by_kind");
    return drain(it, fn, ctx);
}

static size_t be_last(bench_store *st, bench_visit_fn fn, void *ctx) {
    /* the highest published global_seq: not the event count, which a compaction makes
     * smaller than the last seq */
    bp_store_diagnostics d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    must(bp_store_diagnostics_get(st->s, &d), "diagnostics");
    if (!d.published_seq) return 0;
    bp_region r = BP_REGION_INIT;
    r.from_seq = d.published_seq;
    bp_iter *it;
    must(bp_query(st->s, &it, &r, BP_READ_FULL), "query");
    return drain(it, fn, ctx);
}

static bp_status fold_apply(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    (void)value;
    bench_fold_apply(state, ev->payload, ev->payload_len);
    return BP_OK;
}

/* A projection over every kind, answered from the store's projection cache. */
static void be_fold(bench_store *st, const char *entity, bench_fold *out) {
    bp_projection p = {sizeof(bp_projection),
                       "bench.fold",
                       1,
                       sizeof *out,
                       NULL,
                       fold_apply,
                       NULL,
                       0,
                       NULL,
                       0,
                       NULL,
                       false,
                       0};
    must(bp_project(st->s, out, NULL, &p, entity, BP_CONSISTENT), "project");
}

/* Typed: a deposit with an amount, an 80-byte memo and an optional branch (~130 bytes of
 * MessagePack), decoded for the projection on every event. */
#define BENCH_DEPOSIT(F)                                                                           \
    F(ONE, I64, amount, 0)                                                                         \
    F(ONE, STR, memo, 80)                                                                          \
    F(OPT, U32, branch, 0)
BP_TYPE_STATIC(bench_deposit, BENCH_DEPOSIT, "bench.deposit", BP_KIND(1, 1), 1);

static bp_status typed_apply(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    (void)ev;
    bench_fold *f = state;
    f->sum += (uint64_t)((const bench_deposit *)value)->amount;
    f->events++;
    return BP_OK;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void be_fold_typed(const char *dir, size_t entities, size_t per_entity, double *cold_ms,
                          double *again_us) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    must(bp_store_open(&s, dir, &o), "open");
    char ent[32];
    bp_typed_item items[256];
    bench_deposit vals[256];
    size_t n = entities * per_entity, k = 0;
    for (size_t i = 0; i < n; i++) {
        bench_deposit *d = &vals[k];
        memset(d, 0, sizeof *d);
        d->amount = (int64_t)i;
        d->has_branch = i % 3 == 0;
        d->branch = 7;
        snprintf(d->memo, sizeof d->memo, "deposit %zu, with a memo about as long as people write",
                 i);
        static char names[256][32];
        snprintf(names[k], sizeof names[k], "entity:%zu", i % entities);
        items[k] = (bp_typed_item){names[k], "bank", &bench_deposit_type, d, NULL};
        if (++k == 256 || i + 1 == n) {
            must(bp_append_batch_typed(s, NULL, items, k), "append_batch_typed");
            k = 0;
        }
    }
    must(bp_store_close(s), "close");
    must(bp_store_open(&s, dir, &o), "reopen");
    static const bp_type *const types[] = {&bench_deposit_type};
    bp_projection p = {sizeof(bp_projection),
                       "bench.typed",
                       1,
                       sizeof(bench_fold),
                       NULL,
                       typed_apply,
                       types,
                       1,
                       NULL,
                       0,
                       NULL,
                       false,
                       0};
    double *cold = bench_calloc(entities, sizeof *cold),
           *again = bench_calloc(entities, sizeof *again);
    for (size_t e = 0; e < entities; e++) {
        snprintf(ent, sizeof ent, "entity:%zu", e);
        bench_fold f;
        double t0 = now_us();
        must(bp_project(s, &f, NULL, &p, ent, BP_CONSISTENT), "project");
        cold[e] = (now_us() - t0) / 1e3;
        if (f.events != per_entity) bench_die("batpak: typed fold of %s is wrong", ent);
        bench_deposit d = {.amount = 1, .memo = "one more"};
        must(bp_append_typed(s, NULL, ent, "bank", &bench_deposit_type, &d, NULL), "append");
        t0 = now_us();
        must(bp_project(s, &f, NULL, &p, ent, BP_CONSISTENT), "project");
        again[e] = now_us() - t0;
        if (f.events != per_entity + 1) bench_die("batpak: typed fold of %s is wrong", ent);
    }
    qsort(cold, entities, sizeof *cold, cmp_d);
    qsort(again, entities, sizeof *again, cmp_d);
    *cold_ms = cold[entities / 2];
    *again_us = again[entities / 2];
    free(cold);
    free(again);
    must(bp_store_close(s), "close");
}

static bp_status count_delivery(void *ctx, const bp_delivery *d) {
    (void)d;
    (*(uint64_t *)ctx)++;
    return BP_OK;
}

/* ev/s of a worker from start until it handled everything up to seq n. */
static double worker_rate(bp_store *s, const char *id, uint32_t every, size_t n) {
    bp_region r = BP_REGION_INIT;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = id;
    cfg.checkpoint_every = every;
    cfg.batch = 256;
    uint64_t count = 0;
    bp_worker *w;
    double t0 = now_us();
    must(bp_cursor_worker(s, &w, &r, count_delivery, &count, &cfg), "cursor_worker");
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    do {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        bp_worker_stats_get(w, &st);
    } while (st.position < n && st.running);
    double dt = (now_us() - t0) / 1e6;
    must(bp_worker_stop(w), "worker_stop");
    if (count != n)
        bench_die("batpak: the worker delivered %llu of %zu", (unsigned long long)count, n);
    return (double)n / dt;
}

static void be_deliver(const char *dir, size_t n, size_t payload, double *append, double *local,
                       double *ckpt) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    must(bp_store_open(&s, dir, &o), "open");
    uint8_t *p = bench_calloc(1, payload);
    char ent[32];
    double t0 = now_us();
    for (size_t i = 0; i < n; i++) {
        snprintf(ent, sizeof ent, "entity:%zu", i % 1000);
        must(bp_append(s, NULL, ent, "scope:0", BP_KIND(1, 1), p, payload), "append");
    }
    *append = (double)n / ((now_us() - t0) / 1e6);
    *local = worker_rate(s, NULL, 1, n);
    *ckpt = worker_rate(s, "bench", 1000, n);
    free(p);
    must(bp_store_close(s), "close");
}

static uint64_t be_compact(bench_store *st, uint64_t keep_last) {
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = keep_last;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    must(bp_compact(st->s, &rep, &o), "compact");
    return rep.events_removed;
}

static void be_close(bench_store *st) {
    must(bp_store_close(st->s), "close");
    free(st);
}

const bench_backend BE_BATPAK = {
    .name = "batpak",
    .version = be_version,
    .thread_safe = 1,
    .open = be_open,
    .append = be_append,
    .sync = be_sync,
    .fold = be_fold,
    .fold_typed = be_fold_typed,
    .deliver = be_deliver,
    .get = be_get,
    .entity = be_entity,
    .scope = be_scope,
    .kind = be_kind,
    .last = be_last,
    .compact = be_compact,
    .close = be_close,
};
