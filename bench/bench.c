/*
 * bench.c — one workload on one backend, printed as result lines.
 *
 *   batpak-bench --backend B --workload W [--n N] [--payload BYTES]
 *                [--entities E] [--threads T] [--dir DIR] [--reps R]
 *
 * Workloads (every backend gets the same generated events; generation is not
 * timed; every read is checked):
 *   append1k  1 event per append, sync() after every 1000 appends; then the
 *             reads (get by id, stream one entity with and without payloads,
 *             query by scope and by kind) and a clean close + reopen.
 *   batch     256 events per append, each append durable.
 *   bulk      256 events per append, none durable, one sync() at the end (a bulk load).
 *   nosync    1 event per append, none durable, one sync() at the end.
 *   sync      1 event per append, each append durable.
 *   threads   1 event per append, each durable, from --threads threads.
 *   follow    batpak: a reader process follows a durable writer (bench/follow.c).
 *   contend   batpak and sqlite: compare-and-set appends from --threads writers to Zipf-drawn
 *             entities, retried on conflict, and a follower (bench/contend.c).
 *   open      build N events (batches of 256) in a child process that then
 *             closes cleanly (--kill 0) or is SIGKILLed (--kill 1); time
 *             open + read of the last event on --reps fresh copies.
 *   big       batpak only (bench/big.c): a store of 10M events kept between runs; open,
 *             resident memory and CLI wall times, each in a fresh process.
 *
 * Output: lines "R<TAB>backend<TAB>workload<TAB>figure<TAB>value<TAB>unit";
 * bench/run.sh takes the medians and writes the tables.
 *
 * fsync, fdatasync and msync are counted by interposing them here: the
 * program's definitions win over libc's for the shared libraries and for the
 * statically linked batpak alike.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const bench_backend BE_RAW, BE_BATPAK, BE_SQLITE, BE_LMDB, BE_ROCKSDB;
static const bench_backend *const BACKENDS[] = {&BE_RAW, &BE_BATPAK, &BE_SQLITE, &BE_LMDB,
                                                &BE_ROCKSDB};
/* The follow workload (bench/follow.c): a reader in another process behind a writer. */
void bench_follow(const char *dir, size_t n, size_t payload);
/* The contention workload (bench/contend.c) and its own options (--zipf, --seconds). */
void bench_contend(const char *backend, const char *dir, size_t n, size_t threads, size_t entities,
                   size_t payload);
int bench_contend_opt(const char *arg, const char *val);

/* ------------------------------------------------------------ counting syncs */

static atomic_ulong g_syncs;

int fsync(int fd) {
    atomic_fetch_add(&g_syncs, 1);
    return (int)syscall(SYS_fsync, fd);
}
int fdatasync(int fd) {
    atomic_fetch_add(&g_syncs, 1);
    return (int)syscall(SYS_fdatasync, fd);
}
int msync(void *addr, size_t len, int flags) {
    if (flags & MS_SYNC) atomic_fetch_add(&g_syncs, 1);
    return (int)syscall(SYS_msync, addr, len, flags);
}

/* ---------------------------------------------------------------- settings */

static struct {
    const bench_backend *be;
    const char *workload;
    size_t n, payload, entities, threads, reps;
    int kill;
    const char *dir;
    size_t segment_kb; /* for the stores of the open workloads (0: the backend's default) */
} cfg = {NULL, NULL, 100000, 100, 1000, 1, 3, 0, "/var/tmp/batpak-bench", 0};

#define N_SCOPES 16
#define N_KINDS 8
#define POOL (8u << 20)

static uint8_t *g_pool;        /* random bytes the payloads are cut from */
static char (*g_entities)[32]; /* "entity:<k>" */
static char g_scopes[N_SCOPES][16];

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void gen_init(void) {
    g_pool = bench_malloc(POOL + 65536);
    uint64_t x = 42;
    for (size_t i = 0; i < (POOL + 65536) / 8; i++) {
        uint64_t v = splitmix(&x);
        memcpy(g_pool + i * 8, &v, 8);
    }
    g_entities = bench_calloc(cfg.entities, sizeof *g_entities);
    for (size_t k = 0; k < cfg.entities; k++)
        snprintf(g_entities[k], sizeof g_entities[k], "entity:%zu", k);
    for (int k = 0; k < N_SCOPES; k++)
        snprintf(g_scopes[k], sizeof g_scopes[k], "scope:%d", k);
}

static const uint8_t *payload_of(uint64_t i) {
    return g_pool + (i * 4099u) % (POOL - cfg.payload);
}

/* Event i of the data set. id_buf holds the 16-byte id. */
void bench_gen(uint64_t i, bench_event *e, uint8_t id_buf[16]) {
    uint64_t x = i * 2654435761u + 7;
    uint64_t a = splitmix(&x), b = splitmix(&x);
    memcpy(id_buf, &a, 8);
    memcpy(id_buf + 8, &b, 8);
    size_t k = i % cfg.entities;
    e->seq = i;
    e->eseq = i / cfg.entities;
    e->entity = g_entities[k];
    e->entity_len = (uint16_t)strlen(e->entity);
    e->scope = g_scopes[i % N_SCOPES];
    e->scope_len = (uint16_t)strlen(e->scope);
    e->kind = (uint16_t)(0x1000 + (i / 3) % N_KINDS);
    e->ts = 1700000000000000ull + i;
    e->id = id_buf;
    e->payload = payload_of(i);
    e->payload_len = (uint32_t)cfg.payload;
}

/* --------------------------------------------------------------- utilities */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void result(const char *workload, const char *figure, double v, const char *unit) {
    printf("R\t%s\t%s\t%s\t%.6g\t%s\n", cfg.be->name, workload, figure, v, unit);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p) {
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* /proc/self/io: wchar (bytes passed to write calls) and write_bytes (bytes
 * sent to the block layer). */
static void proc_io(uint64_t *wchar, uint64_t *wbytes) {
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    *wchar = *wbytes = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "wchar: %llu", &v) == 1) *wchar = v;
        if (sscanf(line, "write_bytes: %llu", &v) == 1) *wbytes = v;
    }
    fclose(f);
}

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------ read checks */

typedef struct {
    const char *entity; /* expected entity, or NULL */
    const char *scope;  /* expected scope, or NULL */
    int kind;           /* expected kind, or -1 */
    int want_payload;
    uint64_t last; /* last seq (or eseq) + 1 seen, for order */
    int by_eseq;
    size_t n;
    uint64_t sink;
    uint8_t copy[1 << 16];
} check;

static void visit(void *ctx, const bench_event *e) {
    check *c = ctx;
    if (c->entity &&
        (e->entity_len != strlen(c->entity) || memcmp(e->entity, c->entity, e->entity_len)))
        bench_die("%s: read an event of another entity", cfg.be->name);
    if (c->scope && (e->scope_len != strlen(c->scope) || memcmp(e->scope, c->scope, e->scope_len)))
        bench_die("%s: read an event of another scope", cfg.be->name);
    if (c->kind >= 0 && e->kind != c->kind)
        bench_die("%s: read an event of another kind", cfg.be->name);
    uint64_t pos = c->by_eseq ? e->eseq : e->seq;
    if (c->n && pos + 1 <= c->last) bench_die("%s: events out of order", cfg.be->name);
    c->last = pos + 1;
    if (c->want_payload) {
        if (!e->payload || e->payload_len != cfg.payload || e->payload_len > sizeof c->copy)
            bench_die("%s: payload missing or of the wrong size", cfg.be->name);
        memcpy(c->copy, e->payload, e->payload_len); /* as an application would */
        c->sink += c->copy[e->payload_len / 2];
    }
    c->n++;
}

static void check_init(check *c) {
    c->entity = c->scope = NULL;
    c->kind = -1;
    c->want_payload = 1;
    c->last = 0;
    c->by_eseq = 0;
    c->n = 0;
}

static size_t count_where(size_t mod, size_t k) { /* events i < n with i % mod == k */
    return cfg.n / mod + (k < cfg.n % mod ? 1 : 0);
}

/* ------------------------------------------------------------- workloads */

static const char *wl_name(const char *base) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s/p%zu", base, cfg.payload);
    return buf;
}

static void report_io(const char *wl, uint64_t wc0, uint64_t wb0) {
    uint64_t wc, wb;
    proc_io(&wc, &wb);
    result(wl, "syscall_bytes_per_event", (double)(wc - wc0) / (double)cfg.n, "B");
    result(wl, "device_bytes_per_event", (double)(wb - wb0) / (double)cfg.n, "B");
}

static double logical_bytes_per_event(void) {
    uint64_t sum = 0;
    for (size_t k = 0; k < cfg.entities; k++)
        sum += strlen(g_entities[k]) * count_where(cfg.entities, k);
    for (int k = 0; k < N_SCOPES; k++)
        sum += strlen(g_scopes[k]) * count_where(N_SCOPES, (size_t)k);
    return (double)sum / (double)cfg.n + (double)cfg.payload;
}

static void reads(bench_store *s, const bench_key *keys, const char *wl) {
    check *c = bench_calloc(1, sizeof *c);
    uint64_t x = 99;
    /* get by id */
    size_t gets = cfg.n < 10000 ? cfg.n : 10000;
    double *lat = bench_calloc(gets, sizeof *lat);
    for (size_t j = 0; j < gets; j++) {
        uint64_t i = splitmix(&x) % cfg.n;
        check_init(c);
        double t0 = now_s();
        size_t hit = cfg.be->get(s, &keys[i], visit, c);
        lat[j] = (now_s() - t0) * 1e6;
        if (hit != 1 || memcmp(c->copy, payload_of(i), cfg.payload))
            bench_die("%s: get of event %llu failed", cfg.be->name, (unsigned long long)i);
    }
    result(wl, "get_p50", pct(lat, gets, 0.5), "us");
    result(wl, "get_p99", pct(lat, gets, 0.99), "us");
    free(lat);
    /* one entity, with and without payloads */
    size_t reads_n = cfg.entities < 200 ? cfg.entities : 200;
    double *with = bench_calloc(reads_n, sizeof *with),
           *without = bench_calloc(reads_n, sizeof *without);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t j = 0; j < reads_n; j++) {
            size_t k = splitmix(&x) % cfg.entities;
            check_init(c);
            c->entity = g_entities[k];
            c->by_eseq = 1;
            c->want_payload = pass == 0;
            double t0 = now_s();
            size_t got = cfg.be->entity(s, g_entities[k], pass == 0 ? BENCH_PAYLOAD : 0, visit, c);
            (pass == 0 ? with : without)[j] = (now_s() - t0) * 1e6;
            if (got != count_where(cfg.entities, k) || c->n != got)
                bench_die("%s: stream %s: %zu events, want %zu", cfg.be->name, g_entities[k], got,
                          count_where(cfg.entities, k));
        }
    }
    result(wl, "stream_p50", pct(with, reads_n, 0.5), "us");
    result(wl, "stream_p99", pct(with, reads_n, 0.99), "us");
    result(wl, "stream_nopayload_p50", pct(without, reads_n, 0.5), "us");
    free(with);
    free(without);
    /* query by scope, by kind: events/s over a few queries */
    double t = 0;
    size_t events = 0;
    for (int k = 0; k < 4; k++) {
        check_init(c);
        c->scope = g_scopes[k];
        double t0 = now_s();
        size_t got = cfg.be->scope(s, g_scopes[k], visit, c);
        t += now_s() - t0;
        if (got != count_where(N_SCOPES, (size_t)k))
            bench_die("%s: scope %s: %zu events, want %zu", cfg.be->name, g_scopes[k], got,
                      count_where(N_SCOPES, (size_t)k));
        events += got;
    }
    result(wl, "query_scope", (double)events / t, "ev/s");
    t = 0;
    events = 0;
    for (int k = 0; k < 2; k++) {
        check_init(c);
        c->kind = 0x1000 + k;
        double t0 = now_s();
        size_t got = cfg.be->kind(s, (uint16_t)(0x1000 + k), visit, c);
        t += now_s() - t0;
        if (!got) bench_die("%s: kind query found nothing", cfg.be->name);
        events += got;
    }
    result(wl, "query_kind", (double)events / t, "ev/s");
    free(c);
}

/* The first reads after an open (page cache warm, nothing mapped or cached by the process
 * yet): 200 streams of one entity with payloads, each timed. */
static void streams_after_open(bench_store *s, const char *wl) {
    check *c = bench_calloc(1, sizeof *c);
    uint64_t x = 7;
    size_t reads_n = cfg.entities < 200 ? cfg.entities : 200;
    double *lat = bench_calloc(reads_n, sizeof *lat);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    for (size_t j = 0; j < reads_n; j++) {
        size_t k = splitmix(&x) % cfg.entities;
        check_init(c);
        c->entity = g_entities[k];
        c->by_eseq = 1;
        double t0 = now_s();
        size_t got = cfg.be->entity(s, g_entities[k], BENCH_PAYLOAD, visit, c);
        lat[j] = (now_s() - t0) * 1e6;
        if (got != count_where(cfg.entities, k) || c->n != got)
            bench_die("%s: stream %s after reopen: %zu events, want %zu", cfg.be->name,
                      g_entities[k], got, count_where(cfg.entities, k));
    }
    getrusage(RUSAGE_SELF, &ru1);
    result(wl, "stream_after_open_faults",
           (double)(ru1.ru_minflt - ru0.ru_minflt) / (double)reads_n, "");
    result(wl, "stream_after_open_p50", pct(lat, reads_n, 0.5), "us");
    result(wl, "stream_after_open_p99", pct(lat, reads_n, 0.99), "us");
    free(lat);
    free(c);
}

static void read_last_check(bench_store *s, size_t expect_n) {
    check c0;
    check_init(&c0);
    if (cfg.be->last(s, visit, &c0) != 1 || c0.last != expect_n)
        bench_die("%s: the last event is not event %zu", cfg.be->name, expect_n - 1);
}

static void wl_append1k(void) {
    const char *wl = wl_name("append1k");
    char wlb[64];
    snprintf(wlb, sizeof wlb, "%s", wl);
    bench_fresh_dir(cfg.dir);
    bench_opts o = {0, 1, 8192, 0};
    bench_key *keys = bench_calloc(cfg.n, sizeof *keys);
    bench_store *s = cfg.be->open(cfg.dir, &o);
    uint64_t wc0, wb0;
    proc_io(&wc0, &wb0);
    double t0 = now_s();
    for (size_t i = 0; i < cfg.n; i++) {
        bench_event e;
        uint8_t id[16];
        bench_gen(i, &e, id);
        cfg.be->append(s, &e, 1, &keys[i]);
        if ((i + 1) % 1000 == 0) cfg.be->sync(s);
    }
    cfg.be->sync(s);
    double dt = now_s() - t0;
    result(wlb, "append", (double)cfg.n / dt, "ev/s");
    report_io(wlb, wc0, wb0);
    reads(s, keys, wlb);
    t0 = now_s();
    cfg.be->close(s);
    result(wlb, "close", (now_s() - t0) * 1e3, "ms");
    /* batpak's index caches beside the segments (its segment index files and entities.ckpt)
     * are reported on their own (issue 26: "the on-disk index adds at most 48 B/event,
     * reported separately"), not in the disk figure */
    uint64_t fidx = bench_fidx_bytes(cfg.dir);
    double disk = (double)(bench_disk_usage(cfg.dir) - bench_cache_usage(cfg.dir)) / (double)cfg.n;
    result(wlb, "disk_per_event", disk, "B");
    result(wlb, "disk_overhead_per_event", disk - logical_bytes_per_event(), "B");
    if (fidx) {
        char wlx[80];
        snprintf(wlx, sizeof wlx, "index_files_batpak/p%zu", cfg.payload);
        result(wlx, "per_event", (double)fidx / (double)cfg.n, "B");
    }
    t0 = now_s();
    s = cfg.be->open(cfg.dir, &o);
    read_last_check(s, cfg.n);
    result(wlb, "reopen", (now_s() - t0) * 1e3, "ms");
    streams_after_open(s, wlb);
    cfg.be->close(s);
    free(keys);
}

/* cfg.n events in commits of `batch`: each commit durable (durable), or none of them with
 * one sync() at the end, inside the timing (the bulk load, and single appends without sync). */
static void wl_writes(const char *base, size_t batch, int durable) {
    const char *wl = wl_name(base);
    char wlb[64];
    snprintf(wlb, sizeof wlb, "%s", wl);
    bench_fresh_dir(cfg.dir);
    bench_opts o = {durable, 1, 8192, 0};
    bench_store *s = cfg.be->open(cfg.dir, &o);
    bench_event evs[256];
    uint8_t ids[256][16];
    bench_key keys[256];
    uint64_t wc0, wb0;
    proc_io(&wc0, &wb0);
    unsigned long f0 = atomic_load(&g_syncs);
    size_t commits = 0;
    double t0 = now_s();
    for (size_t i = 0; i < cfg.n; i += batch) {
        size_t m = cfg.n - i < batch ? cfg.n - i : batch;
        for (size_t j = 0; j < m; j++)
            bench_gen(i + j, &evs[j], ids[j]);
        cfg.be->append(s, evs, m, keys);
        commits++;
    }
    if (!durable) cfg.be->sync(s);
    double dt = now_s() - t0;
    result(wlb, "append", (double)cfg.n / dt, "ev/s");
    result(wlb, "fsyncs_per_commit", (double)(atomic_load(&g_syncs) - f0) / (double)commits, "");
    report_io(wlb, wc0, wb0);
    cfg.be->close(s);
}

typedef struct {
    bench_store *s;
    bench_key *keys;
    size_t t;
    pthread_mutex_t *mu;
    pthread_barrier_t *go;
} worker;

static void *thread_main(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(w->go);
    for (size_t i = w->t; i < cfg.n; i += cfg.threads) {
        bench_event e;
        uint8_t id[16];
        bench_gen(i, &e, id);
        if (w->mu) pthread_mutex_lock(w->mu);
        cfg.be->append(w->s, &e, 1, &w->keys[i]);
        if (w->mu) pthread_mutex_unlock(w->mu);
    }
    return NULL;
}

static void wl_threads(void) {
    char wl[64];
    snprintf(wl, sizeof wl, "threads%zu/p%zu", cfg.threads, cfg.payload);
    bench_fresh_dir(cfg.dir);
    bench_opts o = {1, (int)cfg.threads, 8192, 0};
    bench_store *s = cfg.be->open(cfg.dir, &o);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)cfg.threads + 1);
    worker *w = bench_calloc(cfg.threads, sizeof *w);
    bench_key *keys = bench_calloc(cfg.n, sizeof *keys);
    pthread_t *th = bench_calloc(cfg.threads, sizeof *th);
    for (size_t t = 0; t < cfg.threads; t++) {
        w[t] = (worker){s, keys, t, cfg.be->thread_safe ? NULL : &mu, &go};
        if (pthread_create(&th[t], NULL, thread_main, &w[t])) bench_die("pthread_create");
    }
    unsigned long f0 = atomic_load(&g_syncs);
    pthread_barrier_wait(&go);
    double t0 = now_s();
    for (size_t t = 0; t < cfg.threads; t++)
        pthread_join(th[t], NULL);
    double dt = now_s() - t0;
    result(wl, "append", (double)cfg.n / dt, "ev/s");
    result(wl, "fsyncs_per_commit", (double)(atomic_load(&g_syncs) - f0) / (double)cfg.n, "");
    cfg.be->close(s);
    /* every event is there after a reopen */
    s = cfg.be->open(cfg.dir, &o);
    check *c = bench_calloc(1, sizeof *c);
    for (size_t i = 0; i < cfg.n; i++) {
        check_init(c);
        if (cfg.be->get(s, &keys[i], visit, c) != 1 || memcmp(c->copy, payload_of(i), cfg.payload))
            bench_die("%s: event %zu missing after the threaded run", cfg.be->name, i);
    }
    cfg.be->close(s);
    free(c);
    free(keys);
    free(w);
    free(th);
}

/* Build cfg.n events in a child that closes cleanly or is killed. */
static void build_store(const char *dir) {
    bench_fresh_dir(dir);
    pid_t pid = fork();
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        bench_opts o = {0, 1, 8192, cfg.segment_kb};
        bench_store *s = cfg.be->open(dir, &o);
        bench_event evs[256];
        uint8_t ids[256][16];
        bench_key keys[256];
        for (size_t i = 0; i < cfg.n; i += 256) {
            size_t m = cfg.n - i < 256 ? cfg.n - i : 256;
            for (size_t j = 0; j < m; j++)
                bench_gen(i + j, &evs[j], ids[j]);
            cfg.be->append(s, evs, m, keys);
        }
        cfg.be->sync(s);
        if (cfg.kill) kill(getpid(), SIGKILL);
        cfg.be->close(s);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) bench_die("waitpid: %s", strerror(errno));
    int ok =
        cfg.kill ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL : WIFEXITED(st) && !WEXITSTATUS(st);
    if (!ok) bench_die("%s: building the store failed (status %d)", cfg.be->name, st);
}

/* Open + read of the last event (global_seq last_n) on --reps fresh copies of src, each in
 * a fresh process: figure `figure` (ms), and with rss its resident memory growth per event. */
static void time_open(const char *src, const char *wl, const char *figure, size_t last_n, int rss) {
    char copy[4096], cmd[8400];
    for (size_t r = 0; r < cfg.reps; r++) {
        snprintf(copy, sizeof copy, "%s", cfg.dir);
        bench_fresh_dir(copy);
        snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", src, copy);
        if (system(cmd)) bench_die("copy failed: %s", cmd);
        pid_t pid = fork(); /* a fresh process: its resident memory is the store's */
        if (pid < 0) bench_die("fork: %s", strerror(errno));
        if (pid == 0) {
            bench_opts o = {0, 1, 8192, cfg.segment_kb};
            uint64_t rss0 = rss_bytes();
            double t0 = now_s();
            bench_store *s = cfg.be->open(copy, &o);
            read_last_check(s, last_n);
            double dt = now_s() - t0;
            result(wl, figure, dt * 1e3, "ms");
            if (rss) result(wl, "rss_per_event", (double)(rss_bytes() - rss0) / (double)cfg.n, "B");
            cfg.be->close(s);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
            bench_die("%s: open run failed", cfg.be->name);
    }
}

static void wl_open(void) {
    char wl[64], src[4096];
    const char *what = cfg.kill ? "open_killed" : "open_clean";
    snprintf(wl, sizeof wl, "%s%zuk/p%zu", what, cfg.n / 1000, cfg.payload);
    snprintf(src, sizeof src, "%s.src", cfg.dir);
    build_store(src);
    time_open(src, wl, "open", cfg.n, 1);
    bench_fresh_dir(src);
    rmdir(src);
}

/* Open after a compaction (batpak only): cfg.n events over cfg.entities entities, compacted
 * to the newest of each entity, so cfg.n - cfg.entities seqs are holes. Timed next to the
 * same store before the compaction (the same seqs, no hole) and a store of the kept number
 * of events without holes: open must follow the events, not the seqs. */
static void wl_open_compacted(void) {
    if (!cfg.be->compact) return;
    char wl[64], src[4096];
    snprintf(wl, sizeof wl, "open_compacted%zuk_batpak/p%zu", cfg.n / 1000, cfg.payload);
    snprintf(src, sizeof src, "%s.src", cfg.dir);
    cfg.segment_kb = 1024; /* the kept events span many segments, each loaded in turn */
    build_store(src);
    time_open(src, wl, "open_before_compaction", cfg.n, 0);
    bench_opts o = {0, 1, 8192, cfg.segment_kb};
    bench_store *s = cfg.be->open(src, &o);
    double t0 = now_s();
    uint64_t holes = cfg.be->compact(s, 1);
    result(wl, "compact", (now_s() - t0) * 1e3, "ms");
    cfg.be->close(s);
    if (holes != cfg.n - cfg.entities)
        bench_die("%s: the compaction removed %llu events, want %zu", cfg.be->name,
                  (unsigned long long)holes, cfg.n - cfg.entities);
    result(wl, "holes", (double)holes, "");
    time_open(src, wl, "open_compacted", cfg.n, 0);
    size_t n = cfg.n; /* the kept number of events, without holes */
    cfg.n = cfg.entities;
    build_store(src);
    time_open(src, wl, "open_same_events_no_holes", cfg.n, 0);
    cfg.n = n;
    bench_fresh_dir(src);
    rmdir(src);
}

/* Fold one entity: the backend's own projection, else read it with payloads and fold. */
static void fold_visit(void *ctx, const bench_event *e) {
    bench_fold_apply(ctx, e->payload, e->payload_len);
}
static void fold_entity(bench_store *s, const char *entity, bench_fold *out) {
    memset(out, 0, sizeof *out);
    if (cfg.be->fold)
        cfg.be->fold(s, entity, out);
    else
        cfg.be->entity(s, entity, BENCH_PAYLOAD, fold_visit, out);
}

/* Projection: each entity holds n / entities events. Reopen, then fold each entity once
 * (cold: nothing cached in the process; the OS page cache is warm), then append one event
 * to it and fold again (the repeated project). Every fold is checked against the data set. */
static void wl_project(void) {
    const char *wl = wl_name("project");
    bench_fresh_dir(cfg.dir);
    bench_opts o = {0, 1, 8192, 0};
    bench_store *s = cfg.be->open(cfg.dir, &o);
    bench_event evs[256];
    uint8_t ids[256][16];
    bench_key keys[256];
    for (size_t i = 0; i < cfg.n; i += 256) {
        size_t m = cfg.n - i < 256 ? cfg.n - i : 256;
        for (size_t j = 0; j < m; j++)
            bench_gen(i + j, &evs[j], ids[j]);
        cfg.be->append(s, evs, m, keys);
    }
    cfg.be->sync(s);
    cfg.be->close(s);
    s = cfg.be->open(cfg.dir, &o);
    size_t ne = cfg.entities < 200 ? cfg.entities : 200;
    double *cold = bench_calloc(ne, sizeof *cold), *again = bench_calloc(ne, sizeof *again);
    bench_fold want, got;
    for (size_t k = 0; k < ne; k++) {
        memset(&want, 0, sizeof want);
        for (size_t i = k; i < cfg.n; i += cfg.entities)
            bench_fold_apply(&want, payload_of(i), cfg.payload);
        double t0 = now_s();
        fold_entity(s, g_entities[k], &got);
        cold[k] = (now_s() - t0) * 1e3;
        if (got.sum != want.sum || got.events != want.events)
            bench_die("%s: cold fold of %s is wrong", cfg.be->name, g_entities[k]);
        uint64_t i = cfg.n + k * cfg.entities + k; /* a new event of entity k */
        bench_gen(i, &evs[0], ids[0]);
        evs[0].entity = g_entities[k];
        evs[0].entity_len = (uint16_t)strlen(g_entities[k]);
        evs[0].eseq = want.events;
        evs[0].seq = cfg.n + k; /* dense: the next global position */
        cfg.be->append(s, evs, 1, keys);
        bench_fold_apply(&want, evs[0].payload, evs[0].payload_len);
        t0 = now_s();
        fold_entity(s, g_entities[k], &got);
        again[k] = (now_s() - t0) * 1e6;
        if (got.sum != want.sum || got.events != want.events)
            bench_die("%s: fold after an append to %s is wrong", cfg.be->name, g_entities[k]);
    }
    result(wl, "fold_cold_p50", pct(cold, ne, 0.5), "ms");
    result(wl, "fold_after_append_p50", pct(again, ne, 0.5), "us");
    free(cold);
    free(again);
    cfg.be->close(s);
}

/* The projection workload with typed payloads: batpak only (the peers store bytes). */
static void wl_project_typed(void) {
    if (!cfg.be->fold_typed) return;
    bench_fresh_dir(cfg.dir);
    double cold, again;
    cfg.be->fold_typed(cfg.dir, cfg.entities, cfg.n / cfg.entities, &cold, &again);
    result("project_typed_batpak/p130", "fold_cold_p50", cold, "ms");
    result("project_typed_batpak/p130", "fold_after_append_p50", again, "us");
}

/* Delivery through cursor workers next to the append rate: batpak only. */
static void wl_deliver(void) {
    if (!cfg.be->deliver) return;
    bench_fresh_dir(cfg.dir);
    double append, local, ckpt;
    cfg.be->deliver(cfg.dir, cfg.n, cfg.payload, &append, &local, &ckpt);
    const char *wl = wl_name("deliver_batpak");
    result(wl, "append_nosync", append, "ev/s");
    result(wl, "worker_local", local, "ev/s");
    result(wl, "worker_ckpt1000", ckpt, "ev/s");
}

/* -------------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr, "usage: batpak-bench --backend raw|batpak|sqlite|lmdb|rocksdb --workload "
                    "append1k|batch|bulk|nosync|sync|threads|open|open_compacted|project|project_"
                    "typed|deliver|big\n"
                    "       [--n N] [--payload BYTES] [--entities E] [--threads T] [--kill 0|1]\n"
                    "       [--reps R] [--dir DIR]\n");
    fprintf(stderr, "       --workload big (batpak; --n 10000000 --entities 100000 unless given):\n"
                    "       also [--cache DIR] [--cli PATH-OF-batpak]\n");
    fprintf(stderr,
            "       --workload contend (batpak, sqlite): also [--zipf S] [--seconds SEC]\n");
    exit(2);
}

static size_t num(const char *s, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) bench_die("%s: not a number: '%s'", what, s);
    return (size_t)v;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--big-probe")) return bench_big_probe(argc - 2, argv + 2);
    const char *cache = NULL, *cli = NULL; /* the big workload's store and batpak CLI */
    int n_set = 0, e_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--backend")) {
            for (size_t b = 0; b < sizeof BACKENDS / sizeof BACKENDS[0]; b++)
                if (!strcmp(BACKENDS[b]->name, v)) cfg.be = BACKENDS[b];
            if (!cfg.be) bench_die("unknown backend '%s'", v);
        } else if (!strcmp(a, "--workload"))
            cfg.workload = v;
        else if (!strcmp(a, "--n"))
            cfg.n = num(v, a), n_set = 1;
        else if (!strcmp(a, "--payload"))
            cfg.payload = num(v, a);
        else if (!strcmp(a, "--entities"))
            cfg.entities = num(v, a), e_set = 1;
        else if (!strcmp(a, "--threads"))
            cfg.threads = num(v, a);
        else if (!strcmp(a, "--reps"))
            cfg.reps = num(v, a);
        else if (!strcmp(a, "--kill"))
            cfg.kill = (int)num(v, a);
        else if (!strcmp(a, "--dir"))
            cfg.dir = v;
        else if (!strcmp(a, "--cache"))
            cache = v;
        else if (!strcmp(a, "--cli"))
            cli = v;
        else if (!bench_contend_opt(a, v))
            usage();
    }
    if (!cfg.be || !cfg.workload) usage();
    int big = !strcmp(cfg.workload, "big");
    if (big && !n_set) cfg.n = 10000000;
    if (big && !e_set) cfg.entities = 100000;
    if (!cfg.n || !cfg.entities || !cfg.threads || !cfg.reps) bench_die("sizes must be > 0");
    if (cfg.payload < 1 || cfg.payload > 65536) bench_die("--payload must be 1..65536");
    gen_init();
    printf("V\t%s\t%s\n", cfg.be->name, cfg.be->version());
    printf("# %s: %s n=%zu payload=%zu entities=%zu threads=%zu\n", cfg.be->name, cfg.workload,
           cfg.n, cfg.payload, cfg.entities, cfg.threads);
    fflush(stdout); /* not again from the children the open workloads fork */
    if (!strcmp(cfg.workload, "append1k"))
        wl_append1k();
    else if (!strcmp(cfg.workload, "batch"))
        wl_writes("batch256", 256, 1);
    else if (!strcmp(cfg.workload, "bulk"))
        wl_writes("bulk256", 256, 0);
    else if (!strcmp(cfg.workload, "nosync"))
        wl_writes("nosync", 1, 0);
    else if (!strcmp(cfg.workload, "sync"))
        wl_writes("sync", 1, 1);
    else if (!strcmp(cfg.workload, "threads"))
        wl_threads();
    else if (!strcmp(cfg.workload, "open"))
        wl_open();
    else if (!strcmp(cfg.workload, "open_compacted"))
        wl_open_compacted();
    else if (!strcmp(cfg.workload, "project"))
        wl_project();
    else if (!strcmp(cfg.workload, "project_typed"))
        wl_project_typed();
    else if (!strcmp(cfg.workload, "deliver"))
        wl_deliver();
    else if (big) { /* batpak only; nothing for the others */
        if (cfg.be == &BE_BATPAK) bench_big(cache, cli, cfg.n, cfg.entities, cfg.payload, cfg.reps);
    } else if (!strcmp(cfg.workload, "follow")) { /* batpak only */
        bench_fresh_dir(cfg.dir);
        if (cfg.be == &BE_BATPAK) bench_follow(cfg.dir, cfg.n, cfg.payload);
    } else if (!strcmp(cfg.workload, "contend")) {
        bench_fresh_dir(cfg.dir);
        bench_contend(cfg.be->name, cfg.dir, cfg.n, cfg.threads, cfg.entities, cfg.payload);
    } else
        usage();
    bench_fresh_dir(cfg.dir);
    rmdir(cfg.dir);
    return 0;
}
