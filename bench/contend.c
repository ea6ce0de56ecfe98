/*
 * contend.c — the contention workload: optimistic concurrency under load, batpak next to
 * SQLite used as an event store, plus a catch-up follower of the whole log.
 *
 *   batpak-bench --backend batpak|sqlite --workload contend [--n N] [--threads T]
 *                [--entities E] [--payload BYTES] [--zipf S] [--seconds SEC]
 *
 * T writer threads (8 in the suite) make N logical appends in all (thread t makes the
 * appends t, t + T, t + 2T, ...). Each logical append picks an entity "stream:<k>" from a
 * Zipf(S) distribution over E entities (S = 0.99, E = 100,000 in the suite; the sequence of
 * each thread comes from a fixed seed, so both backends draw the same entities), reads that
 * entity's head, appends one durable event of BYTES incompressible bytes (1 KiB) with a
 * compare-and-set on that head, and on a conflict reads the head again and retries until the
 * append succeeds. One follower thread reads the whole log from the start, in order, while
 * the writers run, and checks every event (order, per-entity versions 1, 2, 3, ..., payload).
 *
 * Bounded: every attempt first checks a deadline (--seconds, 60 by default); past it the
 * writers stop, and the figures are those of the appends done (stopped_at_cap says so).
 *
 * Figures (workload contend<T>_e<E>/p<BYTES>, "_z<S>" added when S is not 0.99):
 *   append                successful logical appends per second (first start to last end)
 *   conflicts_per_append  failed compare-and-sets per successful logical append
 *   latency_p50, _p99, _max  of a logical append, its first head read to its receipt (ms)
 *   max_retries           the most conflicts any one logical append met
 *   follower_lag_p50, _p99  from an append's receipt (the writer's clock after the call
 *                         returned) to the follower handing that event out (ms; 0 when the
 *                         follower saw it before the writer's call returned)
 *   follower_behind_at_end  events the follower had not seen when the last writer finished
 *   follower_catchup      from the last writer finishing to the follower having seen every
 *                         event (ms)
 *   appends_done, stopped_at_cap
 *
 * The backends:
 *   batpak  head: bp_entity_head; append: bp_append_ex with has_expected_clock = true,
 *           expected_clock = the head, durability BP_DURABLE; BP_ECONFLICT is the conflict.
 *           Follower: bp_cursor_open over every event, bp_cursor_next (batches of up to 256)
 *           waiting up to 100 ms in the library for the next event.
 *   sqlite  events(rowid INTEGER PRIMARY KEY, stream TEXT, version INTEGER, payload BLOB,
 *           UNIQUE(stream, version)); WAL, synchronous=FULL, busy_timeout 10 s, one
 *           connection per writer. Head: SELECT max(version) FROM events WHERE stream=?
 *           outside any transaction; append: an autocommit INSERT of version head + 1, whose
 *           UNIQUE violation (SQLITE_CONSTRAINT_UNIQUE) is the conflict. Follower: its own
 *           connection polling SELECT rowid, stream, version, payload FROM events WHERE
 *           rowid > ? ORDER BY rowid LIMIT 256, sleeping 1 ms when a poll finds nothing.
 */
#include "bench.h"

#include <batpak/batpak.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void bench_contend(const char *backend, const char *dir, size_t n, size_t threads, size_t entities,
                   size_t payload);
int bench_contend_opt(const char *arg, const char *val);

static double g_zipf = 0.99;   /* --zipf */
static double g_seconds = 60;  /* --seconds: the time cap of the writers */
#define FOLLOW_CAP_S 60.0      /* the follower must catch up within this after the writers */
#define SEED 0x24c0ffee2024ull /* the entity sequences: the same for every backend */
#define MARK 16                /* payload bytes 0..15: entity rank, thread, logical index */

int bench_contend_opt(const char *arg, const char *val) {
    char *end;
    double v;
    if (strcmp(arg, "--zipf") && strcmp(arg, "--seconds")) return 0;
    errno = 0;
    v = strtod(val, &end);
    if (errno || *end || end == val || !(v >= 0) || (!strcmp(arg, "--seconds") && v <= 0))
        bench_die("%s: not a valid value: '%s'", arg, val);
    if (!strcmp(arg, "--zipf"))
        g_zipf = v;
    else
        g_seconds = v;
    return 1;
}

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void put32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* p-th percentile of v[0..n) (sorted in place), in ms. */
static double pct_ms(uint64_t *v, size_t n, double p) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1e6;
}

/* ------------------------------------------------------ the two event stores */

/* One event as the follower sees it: valid during the visit call. */
typedef struct {
    uint64_t pos; /* global position: batpak global_seq, SQLite rowid (both from 1, dense) */
    const char *entity;
    uint64_t version; /* batpak clock, SQLite version (from 1 per entity) */
    const uint8_t *payload;
    size_t len;
} cevent;
typedef void (*cvisit_fn)(void *ctx, const cevent *e);

enum { C_OK, C_CONFLICT, C_BUSY };

typedef struct {
    const char *name;
    void *(*open)(const char *dir); /* the shared store */
    void *(*writer)(void *store);   /* one writer's handle */
    uint64_t (*head)(void *w, const char *entity);
    int (*append)(void *w, const char *entity, uint64_t head, const uint8_t *p, size_t len,
                  uint64_t *pos);
    void (*writer_close)(void *w);
    void *(*follower)(void *store);
    /* Hand out the next events in order (waiting a little when there are none); how many. */
    size_t (*follow)(void *f, cvisit_fn fn, void *ctx);
    void (*follower_close)(void *f);
    void (*close)(void *store);
} cas_ops;

/* batpak */

static void bp_must(bp_status rc, const char *what) {
    if (rc != BP_OK) bench_die("batpak %s: %s", what, bp_last_error());
}

static void *bpc_open(const char *dir) {
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true; /* the log holds exactly the workload's events */
    o.durability = BP_DURABLE;
    bp_must(bp_store_open(&s, dir, &o), "open");
    return s;
}
static void *bpc_writer(void *store) {
    return store;
}
static uint64_t bpc_head(void *w, const char *entity) {
    uint64_t clock;
    bp_must(bp_entity_head(w, &clock, NULL, entity), "entity_head");
    return clock;
}
static int bpc_append(void *w, const char *entity, uint64_t head, const uint8_t *p, size_t len,
                      uint64_t *pos) {
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = head;
    o.durability = BP_DURABLE;
    bp_receipt r = BP_RECEIPT_INIT;
    bp_status rc = bp_append_ex(w, &r, entity, "bench", 0x1000, p, len, &o);
    if (rc == BP_ECONFLICT) return C_CONFLICT;
    bp_must(rc, "append_ex");
    if (r.clock != head + 1)
        bench_die("batpak: %s appended at clock %llu after head %llu", entity,
                  (unsigned long long)r.clock, (unsigned long long)head);
    *pos = r.global_seq;
    return C_OK;
}
static void bpc_writer_close(void *w) {
    (void)w;
}
static void *bpc_follower(void *store) {
    bp_cursor *c;
    bp_region all = BP_REGION_INIT;
    bp_must(bp_cursor_open(store, &c, &all, 0), "cursor_open");
    return c;
}
static size_t bpc_follow(void *f, cvisit_fn fn, void *ctx) {
    const bp_event *evs[256];
    size_t n = 0;
    bp_status rc = bp_cursor_next(f, evs, 256, &n, 100);
    if (rc == BP_ETIMEDOUT || rc == BP_DONE) return 0;
    bp_must(rc, "cursor_next");
    for (size_t i = 0; i < n; i++) {
        cevent e = {evs[i]->global_seq, evs[i]->entity, evs[i]->clock, evs[i]->payload,
                    evs[i]->payload_len};
        fn(ctx, &e);
    }
    return n;
}
static void bpc_follower_close(void *f) {
    bp_cursor_free(f);
}
static void bpc_close(void *store) {
    bp_must(bp_store_close(store), "close");
}

static const cas_ops OPS_BATPAK = {"batpak",           bpc_open,         bpc_writer,   bpc_head,
                                   bpc_append,         bpc_writer_close, bpc_follower, bpc_follow,
                                   bpc_follower_close, bpc_close};

/* SQLite */

typedef struct {
    char path[4200];
} sqc_store;
typedef struct {
    sqlite3 *db;
    sqlite3_stmt *head, *ins, *poll;
    uint64_t last; /* follower: the last rowid handed out */
} sqc_conn;

static void sq_check(sqlite3 *db, int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        bench_die("sqlite %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}
static void sq_exec(sqlite3 *db, const char *sql) {
    sq_check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}
static sqlite3_stmt *sq_prep(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    sq_check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    return st;
}
/* One connection: busy_timeout 10 s, synchronous=FULL (the WAL mode is the database's). */
static sqc_conn *sq_connect(const sqc_store *s) {
    sqc_conn *c = bench_calloc(1, sizeof *c);
    sq_check(c->db, sqlite3_open(s->path, &c->db), "open");
    sq_check(c->db, sqlite3_busy_timeout(c->db, 10000), "busy_timeout");
    sq_exec(c->db, "PRAGMA synchronous=FULL");
    return c;
}

static void *sqc_open(const char *dir) {
    sqc_store *s = bench_calloc(1, sizeof *s);
    bench_path(s->path, sizeof s->path, dir, "events.db");
    sqc_conn *c = sq_connect(s);
    sq_exec(c->db, "PRAGMA journal_mode=WAL");
    sq_exec(c->db, "CREATE TABLE events(rowid INTEGER PRIMARY KEY, stream TEXT, version INTEGER, "
                   "payload BLOB, UNIQUE(stream, version))");
    sq_check(c->db, sqlite3_close(c->db), "close");
    free(c);
    return s;
}
static void *sqc_writer(void *store) {
    sqc_conn *c = sq_connect(store);
    c->head = sq_prep(c->db, "SELECT max(version) FROM events WHERE stream = ?");
    c->ins = sq_prep(c->db, "INSERT INTO events(stream, version, payload) VALUES(?, ?, ?)");
    return c;
}
static uint64_t sqc_head(void *w, const char *entity) {
    sqc_conn *c = w;
    sqlite3_bind_text(c->head, 1, entity, -1, SQLITE_STATIC);
    int rc = sqlite3_step(c->head);
    if (rc != SQLITE_ROW) sq_check(c->db, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "head");
    uint64_t v = (uint64_t)sqlite3_column_int64(c->head, 0); /* NULL (no events): 0 */
    sqlite3_reset(c->head);
    return v;
}
static int sqc_append(void *w, const char *entity, uint64_t head, const uint8_t *p, size_t len,
                      uint64_t *pos) {
    sqc_conn *c = w;
    sqlite3_bind_text(c->ins, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(c->ins, 2, (sqlite3_int64)(head + 1));
    sqlite3_bind_blob(c->ins, 3, p, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(c->ins);
    sqlite3_reset(c->ins);
    if (rc == SQLITE_DONE) {
        *pos = (uint64_t)sqlite3_last_insert_rowid(c->db);
        return C_OK;
    }
    if (rc == SQLITE_CONSTRAINT && sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE)
        return C_CONFLICT;
    if (rc == SQLITE_BUSY) { /* the busy handler gave up: as a user would, try again */
        fprintf(stderr, "contend: sqlite INSERT: %s (extended code %d); trying again\n",
                sqlite3_errmsg(c->db), sqlite3_extended_errcode(c->db));
        return C_BUSY;
    }
    sq_check(c->db, rc, "insert");
    return C_OK; /* not reached */
}
static void sqc_conn_close(void *w) {
    sqc_conn *c = w;
    sqlite3_finalize(c->head);
    sqlite3_finalize(c->ins);
    sqlite3_finalize(c->poll);
    sq_check(c->db, sqlite3_close(c->db), "close");
    free(c);
}
static void *sqc_follower(void *store) {
    sqc_conn *c = sq_connect(store);
    c->poll = sq_prep(c->db, "SELECT rowid, stream, version, payload FROM events WHERE rowid > ? "
                             "ORDER BY rowid LIMIT 256");
    return c;
}
static size_t sqc_follow(void *f, cvisit_fn fn, void *ctx) {
    sqc_conn *c = f;
    size_t n = 0;
    int rc;
    sqlite3_bind_int64(c->poll, 1, (sqlite3_int64)c->last);
    while ((rc = sqlite3_step(c->poll)) == SQLITE_ROW) {
        cevent e;
        e.pos = (uint64_t)sqlite3_column_int64(c->poll, 0);
        e.entity = (const char *)sqlite3_column_text(c->poll, 1);
        e.version = (uint64_t)sqlite3_column_int64(c->poll, 2);
        e.payload = sqlite3_column_blob(c->poll, 3);
        e.len = (size_t)sqlite3_column_bytes(c->poll, 3);
        fn(ctx, &e);
        c->last = e.pos;
        n++;
    }
    sqlite3_reset(c->poll);
    if (rc != SQLITE_DONE) sq_check(c->db, rc, "poll");
    if (!n) usleep(1000); /* the polling interval */
    return n;
}
static void sqc_close(void *store) {
    free(store);
}

static const cas_ops OPS_SQLITE = {"sqlite",       sqc_open,       sqc_writer,   sqc_head,
                                   sqc_append,     sqc_conn_close, sqc_follower, sqc_follow,
                                   sqc_conn_close, sqc_close};

/* ------------------------------------------------------------- the workload */

typedef struct {
    const cas_ops *ops;
    void *store;
    size_t n, threads, entities, payload;
    char (*names)[24]; /* "stream:<k>" */
    uint8_t *pool;     /* incompressible bytes the payloads are cut from */
    size_t pool_len;
    uint64_t *recv; /* [pos]: the writer's clock after the append returned (0: not yet) */
    uint64_t *seen; /* [pos]: the follower's clock when it handed the event out */
    pthread_barrier_t go;
    uint64_t t0, deadline;
    atomic_int stop; /* a writer met the deadline */
    atomic_int writers_done;
    atomic_ulong done;     /* successful logical appends, all writers */
    atomic_ulong followed; /* events the follower has handed out */
} contend;

typedef struct {
    contend *c;
    size_t t;
    uint32_t *seq; /* the entity ranks of this thread's logical appends */
    size_t count;  /* how many it has to make */
    size_t made;   /* how many it made */
    uint64_t *lat; /* [made]: ns */
    uint64_t conflicts, busy, max_retries, end;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    contend *c = w->c;
    void *h = c->ops->writer(c->store);
    uint8_t *p = bench_malloc(c->payload);
    pthread_barrier_wait(&c->go);
    for (size_t j = 0; j < w->count && !atomic_load(&c->stop); j++) {
        uint32_t k = w->seq[j];
        uint64_t i = w->t + j * c->threads; /* the logical append's number */
        memcpy(p, c->pool + (i * 4099u) % (c->pool_len - c->payload), c->payload);
        put32(p, k);
        put32(p + 4, (uint32_t)w->t);
        memcpy(p + 8, &i, 8);
        uint64_t t0 = now_ns(), retries = 0, pos = 0;
        int rc;
        for (;;) {
            if (now_ns() > c->deadline) atomic_store(&c->stop, 1);
            if (atomic_load(&c->stop)) goto out;
            uint64_t head = c->ops->head(h, c->names[k]);
            rc = c->ops->append(h, c->names[k], head, p, c->payload, &pos);
            if (rc == C_OK) break;
            retries++;
            if (rc == C_CONFLICT)
                w->conflicts++;
            else
                w->busy++;
        }
        uint64_t t1 = now_ns();
        if (pos < 1 || pos > c->n || c->recv[pos])
            bench_die("%s: append at position %llu (want 1..%zu, once)", c->ops->name,
                      (unsigned long long)pos, c->n);
        c->recv[pos] = t1;
        w->lat[w->made++] = t1 - t0;
        if (retries > w->max_retries) w->max_retries = retries;
        atomic_fetch_add(&c->done, 1);
    }
out:
    w->end = now_ns();
    free(p);
    c->ops->writer_close(h);
    return NULL;
}

typedef struct {
    contend *c;
    uint32_t *versions; /* [k]: the last version of entity k seen */
    uint64_t last;      /* the last position seen */
} follower;

static void follow_visit(void *ctx, const cevent *e) {
    follower *f = ctx;
    contend *c = f->c;
    uint64_t t = now_ns();
    if (e->pos != f->last + 1 || e->pos > c->n)
        bench_die("%s follower: position %llu after %llu", c->ops->name, (unsigned long long)e->pos,
                  (unsigned long long)f->last);
    f->last = e->pos;
    if (e->len != c->payload || !e->payload)
        bench_die("%s follower: event %llu has %zu payload bytes, want %zu", c->ops->name,
                  (unsigned long long)e->pos, e->len, c->payload);
    uint32_t k = get32(e->payload);
    if (k >= c->entities || strcmp(e->entity, c->names[k]))
        bench_die("%s follower: event %llu of %s carries the mark of entity %u", c->ops->name,
                  (unsigned long long)e->pos, e->entity, k);
    if (e->version != (uint64_t)f->versions[k] + 1)
        bench_die("%s follower: %s version %llu after %u", c->ops->name, e->entity,
                  (unsigned long long)e->version, f->versions[k]);
    f->versions[k]++;
    c->seen[e->pos] = t;
    atomic_store(&c->followed, e->pos);
}

static void *follower_main(void *arg) {
    contend *c = arg;
    follower f = {c, bench_calloc(c->entities, sizeof(uint32_t)), 0};
    void *h = c->ops->follower(c->store);
    pthread_barrier_wait(&c->go);
    uint64_t cap = 0;
    for (;;) {
        if (atomic_load(&c->writers_done)) {
            if (f.last >= atomic_load(&c->done)) break;
            if (!cap) cap = now_ns() + (uint64_t)(FOLLOW_CAP_S * 1e9);
            if (now_ns() > cap)
                bench_die("%s follower: saw %llu of %lu events %.0f s after the writers ended",
                          c->ops->name, (unsigned long long)f.last, atomic_load(&c->done),
                          FOLLOW_CAP_S);
        }
        c->ops->follow(h, follow_visit, &f);
    }
    c->ops->follower_close(h);
    free(f.versions);
    return NULL;
}

static void put_result(const char *be, const char *wl, const char *fig, double v,
                       const char *unit) {
    printf("R\t%s\t%s\t%s\t%.6g\t%s\n", be, wl, fig, v, unit);
}

void bench_contend(const char *backend, const char *dir, size_t n, size_t threads, size_t entities,
                   size_t payload) {
    const cas_ops *ops = !strcmp(backend, "batpak")   ? &OPS_BATPAK
                         : !strcmp(backend, "sqlite") ? &OPS_SQLITE
                                                      : NULL;
    if (!ops) {
        printf("# contend: %s has no compare-and-set append; nothing to run\n", backend);
        return;
    }
    if (payload < MARK) bench_die("contend: --payload must be at least %d", MARK);
    if (entities > UINT32_MAX) bench_die("contend: --entities must be below 2^32");
    char wl[96];
    int w0 = snprintf(wl, sizeof wl, "contend%zu_e%zu", threads, entities);
    if (g_zipf != 0.99) w0 += snprintf(wl + w0, sizeof wl - (size_t)w0, "_z%g", g_zipf);
    snprintf(wl + w0, sizeof wl - (size_t)w0, "/p%zu", payload);

    contend *c = bench_calloc(1, sizeof *c);
    c->ops = ops;
    c->n = n;
    c->threads = threads;
    c->entities = entities;
    c->payload = payload;
    c->names = bench_calloc(entities, sizeof *c->names);
    for (size_t k = 0; k < entities; k++)
        snprintf(c->names[k], sizeof c->names[k], "stream:%zu", k);
    c->pool_len = (1u << 20) + payload;
    c->pool = bench_malloc(c->pool_len + 8);
    uint64_t x = SEED;
    for (size_t i = 0; i < c->pool_len; i += 8) {
        uint64_t v = splitmix(&x);
        memcpy(c->pool + i, &v, 8);
    }
    c->recv = bench_calloc(n + 1, sizeof *c->recv);
    c->seen = bench_calloc(n + 1, sizeof *c->seen);

    /* Zipf(s) over the ranks 0..E-1: P(k) proportional to 1 / (k + 1)^s; drawn by
     * inverting the cumulative distribution. Each thread's draws come from its own seed. */
    double *cdf = bench_malloc(entities * sizeof *cdf), sum = 0;
    for (size_t k = 0; k < entities; k++)
        cdf[k] = (sum += 1.0 / pow((double)(k + 1), g_zipf));
    writer *w = bench_calloc(threads, sizeof *w);
    for (size_t t = 0; t < threads; t++) {
        w[t].c = c;
        w[t].t = t;
        w[t].count = t < n ? (n - t + threads - 1) / threads : 0;
        w[t].seq = bench_calloc(w[t].count, sizeof *w[t].seq);
        w[t].lat = bench_calloc(w[t].count, sizeof *w[t].lat);
        uint64_t r = SEED ^ (0x9E3779B97F4A7C15ull * (t + 1));
        for (size_t j = 0; j < w[t].count; j++) {
            double u = (double)(splitmix(&r) >> 11) * 0x1.0p-53 * sum;
            size_t lo = 0, hi = entities - 1; /* the first k with cdf[k] > u */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            w[t].seq[j] = (uint32_t)lo;
        }
    }
    free(cdf);

    c->store = ops->open(dir);
    pthread_barrier_init(&c->go, NULL, (unsigned)threads + 2);
    pthread_t *th = bench_calloc(threads, sizeof *th), fth;
    for (size_t t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, writer_main, &w[t])) bench_die("pthread_create");
    if (pthread_create(&fth, NULL, follower_main, c)) bench_die("pthread_create");
    c->t0 = now_ns();
    c->deadline = c->t0 + (uint64_t)(g_seconds * 1e9);
    pthread_barrier_wait(&c->go);
    for (size_t t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    uint64_t end = 0;
    for (size_t t = 0; t < threads; t++)
        if (w[t].end > end) end = w[t].end;
    uint64_t behind = atomic_load(&c->done) - atomic_load(&c->followed);
    atomic_store(&c->writers_done, 1);
    pthread_join(fth, NULL);
    ops->close(c->store);

    size_t done = atomic_load(&c->done), k = 0;
    uint64_t conflicts = 0, busy = 0, max_retries = 0;
    uint64_t *lat = bench_calloc(done, sizeof *lat), *lag = bench_calloc(done, sizeof *lag);
    for (size_t t = 0; t < threads; t++) {
        memcpy(lat + k, w[t].lat, w[t].made * sizeof *lat);
        k += w[t].made;
        conflicts += w[t].conflicts;
        busy += w[t].busy;
        if (w[t].max_retries > max_retries) max_retries = w[t].max_retries;
    }
    for (size_t p = 1; p <= done; p++) /* every position 1..done was appended and followed */
        lag[p - 1] = c->seen[p] > c->recv[p] ? c->seen[p] - c->recv[p] : 0;
    int capped = atomic_load(&c->stop);
    double secs = (double)(end - c->t0) / 1e9;
    if (capped)
        printf("# contend: %s stopped at the %.0f s cap after %zu of %zu logical appends\n",
               ops->name, g_seconds, done, n);
    if (busy)
        printf("# contend: %s: %llu SQLITE_BUSY retries\n", ops->name, (unsigned long long)busy);
    put_result(ops->name, wl, "append", done ? (double)done / secs : 0, "ev/s");
    put_result(ops->name, wl, "conflicts_per_append",
               done ? (double)conflicts / (double)done : (double)conflicts, "");
    put_result(ops->name, wl, "latency_p50", pct_ms(lat, done, 0.5), "ms");
    put_result(ops->name, wl, "latency_p99", pct_ms(lat, done, 0.99), "ms");
    put_result(ops->name, wl, "latency_max", pct_ms(lat, done, 1), "ms");
    put_result(ops->name, wl, "max_retries", (double)max_retries, "");
    put_result(ops->name, wl, "follower_lag_p50", pct_ms(lag, done, 0.5), "ms");
    put_result(ops->name, wl, "follower_lag_p99", pct_ms(lag, done, 0.99), "ms");
    put_result(ops->name, wl, "follower_behind_at_end", (double)behind, "");
    uint64_t caught = done ? c->seen[done] : end; /* the follower saw the last event */
    put_result(ops->name, wl, "follower_catchup", caught > end ? (double)(caught - end) / 1e6 : 0,
               "ms");
    put_result(ops->name, wl, "appends_done", (double)done, "");
    put_result(ops->name, wl, "stopped_at_cap", capped, "");
    fflush(stdout);

    for (size_t t = 0; t < threads; t++) {
        free(w[t].seq);
        free(w[t].lat);
    }
    free(w);
    free(th);
    free(lat);
    free(lag);
    pthread_barrier_destroy(&c->go);
    free(c->names);
    free(c->pool);
    free(c->recv);
    free(c->seen);
    free(c);
}
