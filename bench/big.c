/*
 * big.c — the big-store workload (batpak only): what an application meets on a store of
 * 10M events (issue 26, the index read in place from disk): how long the open takes after a
 * clean close and after kill -9, the anonymous memory the open and the first 10,000 random
 * reads leave resident, and the wall time of the CLI's get, stream --limit 10 and stats.
 *
 * The store is built once (not timed) into a cache directory and reused while its marker
 * matches: CACHE/store (the store: N events of the data set, commits of 256 with BP_NO_SYNC,
 * one sync, a clean close), CACHE/ids (10,000 random events' index and id, recorded from the
 * receipts while building) and CACHE/marker (written after the clean close: the format and
 * library versions, N, entities, payload and the events the store holds).
 *
 * Each figure is measured in a fresh process (this program exec'd again with --big-probe,
 * or the CLI), REPS times, after one untimed open that warms the page cache (and, before the
 * CLI's, a read of every file of the store: each command reads pages of its own); bench/run.sh
 * takes the medians. The kill -9 runs append 1,000 more events of the data set (events
 * count .. count + 999: existing entities, the last commit BP_DURABLE) in a child that is
 * then SIGKILLed, so the store stays "events 0 .. count - 1 of the data set" and the marker
 * records the new count; past N + 10 % it is built again.
 */
#include "bench.h"

#include <batpak/batpak.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format/six.h" /* BP_FORMAT_VERSION, BP_SIX_VERSION: the marker names them */

extern const bench_backend BE_BATPAK;

#define SAMPLE 10000     /* ids recorded at build time: the random gets */
#define KILL_EVENTS 1000 /* appended by each kill -9 run */
#define POOL (8u << 20)  /* as bench.c: the payloads are cut from POOL splitmix bytes */

typedef struct sample {
    uint64_t i; /* the event's index in the data set (global_seq - 1) */
    uint8_t id[16];
} sample;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void put(const char *wl, const char *figure, double v, const char *unit) {
    printf("R\tbatpak\t%s\t%s\t%.6g\t%s\n", wl, figure, v, unit);
    fflush(stdout);
}

static uint64_t mix(uint64_t z) { /* splitmix64's output function */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The payload of event i, computed without bench.c's 8 MiB pool (so the probe's resident
 * memory is the store's): word k of the pool is splitmix step k + 1 from seed 42. */
static void want_payload(uint64_t i, size_t len, uint8_t *out) {
    uint64_t off = (i * 4099u) % (POOL - len);
    for (size_t k = 0; k < len; k++) {
        uint64_t o = off + k, w = mix(42 + (o / 8 + 1) * 0x9E3779B97F4A7C15ull);
        uint8_t b[8];
        memcpy(b, &w, 8);
        out[k] = b[o % 8];
    }
}

/* RssAnon of /proc/self/status, in MiB. */
static double rss_anon_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long kb = 0;
    int found = 0;
    if (!f) bench_die("big: /proc/self/status: %s", strerror(errno));
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "RssAnon: %lu kB", &kb) == 1;
    fclose(f);
    if (!found) bench_die("big: no RssAnon in /proc/self/status");
    return (double)kb / 1024.0;
}

/* ------------------------------------------------------------ read checks */

typedef struct big_check {
    uint64_t i; /* the event expected */
    const uint8_t *id;
    size_t entities, payload, n;
    uint8_t want[65536], copy[65536];
} big_check;

static void big_visit(void *ctx, const bench_event *e) {
    big_check *c = ctx;
    char ent[32];
    snprintf(ent, sizeof ent, "entity:%llu", (unsigned long long)(c->i % c->entities));
    if (e->seq != c->i)
        bench_die("big: read event %llu, want event %llu", (unsigned long long)e->seq,
                  (unsigned long long)c->i);
    if (e->entity_len != strlen(ent) || memcmp(e->entity, ent, e->entity_len))
        bench_die("big: event %llu is of entity '%.*s', want '%s'", (unsigned long long)c->i,
                  (int)e->entity_len, e->entity, ent);
    if (c->id && memcmp(e->id, c->id, 16))
        bench_die("big: event %llu has another id", (unsigned long long)c->i);
    if (!e->payload || e->payload_len != c->payload)
        bench_die("big: event %llu: payload missing or of the wrong size",
                  (unsigned long long)c->i);
    memcpy(c->copy, e->payload, e->payload_len); /* as an application would */
    want_payload(c->i, c->payload, c->want);
    if (memcmp(c->copy, c->want, c->payload))
        bench_die("big: event %llu: wrong payload bytes", (unsigned long long)c->i);
    c->n++;
}

/* ------------------------------------------------------------------ probe */

/* The fresh process: batpak-bench --big-probe MODE STORE IDS COUNT ENTITIES PAYLOAD WL.
 * MODE warm: open, the reads, close, nothing printed; clean: open_clean_ms, RssAnon before
 * and after the open and after the 10,000 gets; killed: open_killed_ms. Every mode reads
 * the last event (COUNT - 1) and checks it, and closes cleanly. */
int bench_big_probe(int argc, char **argv) {
    if (argc != 7) bench_die("big: --big-probe MODE STORE IDS COUNT ENTITIES PAYLOAD WL");
    const char *mode = argv[0], *store = argv[1], *ids = argv[2], *wl = argv[6];
    uint64_t count = strtoull(argv[3], NULL, 10);
    big_check *c = bench_calloc(1, sizeof *c);
    memset(c, 0, sizeof *c); /* resident before the first RssAnon */
    c->entities = strtoull(argv[4], NULL, 10);
    c->payload = strtoull(argv[5], NULL, 10);
    int killed = !strcmp(mode, "killed"), clean = !strcmp(mode, "clean");
    sample *smp = NULL;
    size_t ns = 0;
    if (!killed) { /* read before the first RssAnon: the harness's own memory */
        FILE *f = fopen(ids, "rb");
        if (!f) bench_die("big: %s: %s", ids, strerror(errno));
        smp = bench_calloc(SAMPLE, sizeof *smp);
        ns = fread(smp, sizeof *smp, SAMPLE, f);
        fclose(f);
        if (!ns) bench_die("big: %s holds no ids", ids);
    }
    bench_opts o = {0, 1, 8192, 0}; /* writable, as be_batpak opens (and applications do) */
    double rss0 = rss_anon_mb(), t0 = now_s();
    bench_store *s = BE_BATPAK.open(store, &o);
    double dt = now_s() - t0, rss1 = rss_anon_mb();
    c->i = count - 1;
    if (BE_BATPAK.last(s, big_visit, c) != 1 || c->n != 1)
        bench_die("big: %s: no last event (want event %llu)", store, (unsigned long long)count - 1);
    for (size_t j = 0; j < ns; j++) {
        c->i = smp[j].i;
        c->id = smp[j].id;
        c->n = 0;
        bench_key k;
        memcpy(k.b, smp[j].id, 16);
        if (BE_BATPAK.get(s, &k, big_visit, c) != 1 || c->n != 1)
            bench_die("big: get of event %llu by its id found nothing", (unsigned long long)c->i);
    }
    double rss2 = rss_anon_mb();
    if (killed) put(wl, "open_killed_ms", dt * 1e3, "ms");
    if (clean) {
        put(wl, "open_clean_ms", dt * 1e3, "ms");
        put(wl, "rss_anon_mb_before_open", rss0, "MB");
        put(wl, "rss_anon_mb_after_open", rss1, "MB");
        put(wl, "rss_anon_mb_after_open_delta", rss1 - rss0, "MB");
        put(wl, "rss_anon_mb_after_10k_reads", rss2, "MB");
    }
    BE_BATPAK.close(s);
    free(smp);
    free(c);
    return 0;
}

/* ------------------------------------------------------------- processes */

/* Runs argv (stdout to /dev/null when quiet) and waits; dies unless it exits 0. Returns
 * the wall time from before the fork to after the wait, in ms. */
static double run_wait(char *const argv[], int quiet) {
    fflush(stdout);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (quiet && !freopen("/dev/null", "w", stdout)) _exit(126);
        execv(argv[0], argv);
        fprintf(stderr, "bench: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) bench_die("waitpid: %s", strerror(errno));
    double dt = (now_s() - t0) * 1e3;
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        char cmd[8192];
        size_t len = 0;
        for (size_t k = 0; argv[k] && len < sizeof cmd; k++)
            len += (size_t)snprintf(cmd + len, sizeof cmd - len, " %s", argv[k]);
        bench_die("big: this command failed (%s %d):%s", WIFEXITED(st) ? "exit" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), cmd);
    }
    return dt;
}

typedef struct big {
    char cache[4096], store[4200], ids[4200], marker[4200], self[4096], cli[4096], wl[64];
    size_t n, entities, payload, reps;
    uint64_t count; /* events in the store */
} big;

static void probe(const big *b, const char *mode) {
    char count[32], ent[32], pay[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)b->count);
    snprintf(ent, sizeof ent, "%zu", b->entities);
    snprintf(pay, sizeof pay, "%zu", b->payload);
    char *argv[] = {(char *)b->self, "--big-probe", (char *)mode, (char *)b->store, (char *)b->ids,
                    count,           ent,           pay,          (char *)b->wl,    NULL};
    run_wait(argv, 0);
}

/* The marker: valid when every line matches this build and this run. */
static int marker_ok(big *b) {
    FILE *f = fopen(b->marker, "r");
    if (!f) return 0;
    unsigned fmt = 0, six = 0;
    char lib[64] = "";
    unsigned long long n = 0, e = 0, p = 0, count = 0;
    int got = fscanf(f, "batpak-bench big store\nformat %u six %u library %63s\n", &fmt, &six, lib);
    got += fscanf(f, "n %llu entities %llu payload %llu\ncount %llu\n", &n, &e, &p, &count);
    fclose(f);
    struct stat st;
    if (got != 7 || fmt != BP_FORMAT_VERSION || six != BP_SIX_VERSION ||
        strcmp(lib, bp_version()) || n != b->n || e != b->entities || p != b->payload ||
        count < n || count - n > n / 10 || stat(b->ids, &st) ||
        st.st_size != SAMPLE * (off_t)sizeof(sample))
        return 0;
    b->count = count;
    return 1;
}

static void marker_write(const big *b) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", b->marker);
    FILE *f = fopen(tmp, "w");
    if (!f) bench_die("big: %s: %s", tmp, strerror(errno));
    fprintf(f, "batpak-bench big store\nformat %u six %u library %s\n", (unsigned)BP_FORMAT_VERSION,
            (unsigned)BP_SIX_VERSION, bp_version());
    fprintf(f, "n %zu entities %zu payload %zu\ncount %llu\n", b->n, b->entities, b->payload,
            (unsigned long long)b->count);
    if (fclose(f) || rename(tmp, b->marker)) bench_die("big: %s: %s", b->marker, strerror(errno));
}

typedef struct pick {
    uint64_t i;
    size_t slot;
} pick;

static int cmp_pick(const void *x, const void *y) {
    const pick *a = x, *b = y;
    return (a->i > b->i) - (a->i < b->i);
}

/* The child that builds the store: n events in commits of 256, BP_NO_SYNC, one sync, a
 * clean close; the ids of SAMPLE random events (from the receipts) into b->ids. */
static void build_child(const big *b) {
    sample *smp = bench_calloc(SAMPLE, sizeof *smp);
    pick *pk = bench_calloc(SAMPLE, sizeof *pk);
    uint64_t x = 2026;
    for (size_t j = 0; j < SAMPLE; j++) {
        x += 0x9E3779B97F4A7C15ull;
        pk[j] = (pick){mix(x) % b->n, j}; /* repeats are fine */
    }
    qsort(pk, SAMPLE, sizeof *pk, cmp_pick);
    bench_opts o = {0, 1, 8192, 0}; /* no sync per commit */
    bench_store *s = BE_BATPAK.open(b->store, &o);
    bench_event evs[256];
    uint8_t idb[256][16], want[65536];
    bench_key keys[256];
    size_t p = 0;
    for (uint64_t i = 0; i < b->n; i += 256) {
        size_t m = b->n - i < 256 ? (size_t)(b->n - i) : 256;
        for (size_t j = 0; j < m; j++)
            bench_gen(i + j, &evs[j], idb[j]);
        BE_BATPAK.append(s, evs, m, keys);
        for (; p < SAMPLE && pk[p].i < i + m; p++) {
            size_t j = (size_t)(pk[p].i - i);
            want_payload(pk[p].i, b->payload, want); /* the probe's payloads are bench.c's */
            if (memcmp(want, evs[j].payload, b->payload))
                bench_die("big: want_payload does not match the data set's payload");
            smp[pk[p].slot].i = pk[p].i;
            memcpy(smp[pk[p].slot].id, keys[j].b, 16);
        }
    }
    BE_BATPAK.sync(s);
    BE_BATPAK.close(s);
    FILE *f = fopen(b->ids, "wb");
    if (!f || fwrite(smp, sizeof *smp, SAMPLE, f) != SAMPLE || fclose(f))
        bench_die("big: writing %s: %s", b->ids, strerror(errno));
    free(smp);
    free(pk);
}

/* The store in the cache, as the marker says, or built again. */
static void ensure_store(big *b) {
    if (marker_ok(b)) {
        printf("# big: reusing %s (%llu events)\n", b->cache, (unsigned long long)b->count);
        return;
    }
    remove(b->marker);
    if (mkdir(b->cache, 0755) && errno != EEXIST)
        bench_die("big: mkdir %s: %s", b->cache, strerror(errno));
    bench_fresh_dir(b->store);
    remove(b->ids);
    fflush(stdout);
    double t0 = now_s();
    pid_t pid = fork(); /* the builder's memory is not this process's */
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        build_child(b);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        bench_die("big: building %s failed", b->store);
    b->count = b->n;
    marker_write(b);
    printf("# big: built %zu events in %s in %.1f s (not timed)\n", b->n, b->cache, now_s() - t0);
    /* the gigabytes just written go to disk before anything is timed (measured: the 50M
     * store's first opens took 61 ms while the kernel wrote them back, 26 ms after) */
    sync();
}

/* A child appends KILL_EVENTS more events of the data set (commits of 256, the last one
 * BP_DURABLE) to the cached store, opened writable, and is SIGKILLed. */
static bp_store *open_and_append(const big *b, uint64_t m, bool last_durable, const char *who);

static void append_and_kill(big *b) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        (void)open_and_append(b, KILL_EVENTS, true, "the append before the kill");
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        bench_die("big: the append-and-kill child failed (status %d)", st);
    b->count += KILL_EVENTS;
}

/* The cached store opened writable (BP_NO_SYNC, no open event), with m more events of the
 * data set appended in commits of 256, each checked to land where it should; the last commit
 * BP_DURABLE when last_durable. who names the caller in what it dies with. */
static bp_store *open_and_append(const big *b, uint64_t m, bool last_durable, const char *who) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.create = false;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    if (bp_store_open(&s, b->store, &o)) bench_die("big: %s: open: %s", who, bp_last_error());
    bench_event evs[256];
    uint8_t idb[256][16];
    bp_batch_item items[256];
    bp_receipt rc[256];
    uint64_t end = b->count + m;
    for (uint64_t i = b->count; i < end; i += 256) {
        size_t k = end - i < 256 ? (size_t)(end - i) : 256;
        for (size_t j = 0; j < k; j++) {
            bench_gen(i + j, &evs[j], idb[j]);
            items[j] = (bp_batch_item){evs[j].entity,  evs[j].scope,       evs[j].kind,
                                       evs[j].payload, evs[j].payload_len, NULL};
        }
        bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
        bo.durability = last_durable && i + k == end ? BP_DURABLE : BP_NO_SYNC;
        rc[0].struct_size = sizeof rc[0];
        if (bp_append_batch_ex(s, rc, items, k, &bo))
            bench_die("big: %s: %s", who, bp_last_error());
        if (rc[k - 1].global_seq != i + k)
            bench_die("big: %s landed at %llu, want %llu", who,
                      (unsigned long long)rc[k - 1].global_seq, (unsigned long long)(i + k));
    }
    return s;
}

/* Events a live writer holds unsealed while the CLI runs beside it: about 60 MiB of frames, most
 * of a default segment (fewer on a small store: the cache allows 10 % more than n). */
#define LIVE_EVENTS 240000u

static volatile sig_atomic_t g_live_stop;
static void live_on_term(int sig) {
    (void)sig;
    g_live_stop = 1;
}

/* A child opens the cached store writable, appends m more events of the data set (commits of
 * 256, BP_NO_SYNC, then one sync: published, not sealed), writes a byte to fd and holds the
 * store until SIGTERM, when it closes it cleanly (which seals them). Its pid. */
static pid_t live_start(big *b, uint64_t m, int fd) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid) return pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = live_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old); /* (taken only in sigsuspend below) */
    bp_store *s = open_and_append(b, m, false, "the live writer");
    if (bp_store_sync(s)) bench_die("big: live writer: sync: %s", bp_last_error());
    if (write(fd, "r", 1) != 1) _exit(2);
    while (!g_live_stop)
        sigsuspend(&old);
    _exit(bp_store_close(s) ? 3 : 0);
}

static void run_cli(const big *b, const char *figure, const char *a1, const char *a2,
                    const char *a3, const char *a4) {
    char *argv[] = {(char *)b->cli, "--dir",    (char *)b->store, (char *)a1,
                    (char *)a2,     (char *)a3, (char *)a4,       NULL};
    put(b->wl, figure, run_wait(argv, 1), "ms");
}

/* `batpak ui` on the store (loopback, a port it picks): its pid; *port from the URL it prints. */
static pid_t ui_start(const big *b, unsigned *port) {
    int p[2];
    if (pipe(p)) bench_die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char *argv[] = {(char *)b->cli, "--dir", (char *)b->store, "ui", "--listen",
                        "127.0.0.1:0",  NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && read(p[0], line + len, 1) == 1 && line[len] != '\n')
        len++;
    line[len] = '\0';
    close(p[0]);
    const char *at = strstr(line, "127.0.0.1:");
    if (!at || sscanf(at + 10, "%u", port) != 1)
        bench_die("big: batpak ui printed no URL ('%s'): built without libmicrohttpd?", line);
    return pid;
}

/* GET path from the server on 127.0.0.1:port; dies unless it answers 200. Wall ms from the
 * connect to the end of the reply. */
static double http_get_ms(unsigned port, const char *path) {
    double t0 = now_s();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin))
        bench_die("big: connect to batpak ui: %s", strerror(errno));
    char req[512], head[64] = "";
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) bench_die("big: write to batpak ui: %s", strerror(errno));
    char buf[65536];
    size_t got = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) {
        if (got < sizeof head - 1)
            memcpy(head + got, buf,
                   (size_t)k < sizeof head - 1 - got ? (size_t)k : sizeof head - 1 - got);
        got += (size_t)k;
    }
    close(fd);
    double dt = (now_s() - t0) * 1e3;
    if (strncmp(head, "HTTP/1.0 200", 12) && strncmp(head, "HTTP/1.1 200", 12))
        bench_die("big: batpak ui answered '%.40s' to GET %s", head, path);
    return dt;
}

/* The entity-list endpoint of batpak ui: pages of 100 from sampled names, reps times (figure
 * PREFIXui_entities_ms, timed at the endpoint: one HTTP request and its whole reply). */
static void run_ui(const big *b, const char *prefix, const sample *smp, size_t ns) {
    unsigned port = 0;
    pid_t pid = ui_start(b, &port);
    char fig[64], path[256];
    snprintf(fig, sizeof fig, "%sui_entities_ms", prefix);
    for (size_t r = 0; r < b->reps; r++) {
        snprintf(path, sizeof path, "/api/entities?prefix=entity:&limit=100&after=entity:%llu",
                 (unsigned long long)(smp[r % ns].i % b->entities));
        put(b->wl, fig, http_get_ms(port, path), "ms");
    }
    int st;
    if (kill(pid, SIGTERM) || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        bench_die("big: batpak ui did not stop cleanly");
}

/* The CLI's get, stream --limit 10 and stats, reps times, on sampled events: figures
 * PREFIXcli_get_ms, PREFIXcli_stream10_ms and PREFIXcli_stats_ms. */
static void run_clis(const big *b, const char *prefix, const sample *smp, size_t ns) {
    char fg[64], fs[64], ft[64];
    snprintf(fg, sizeof fg, "%scli_get_ms", prefix);
    snprintf(fs, sizeof fs, "%scli_stream10_ms", prefix);
    snprintf(ft, sizeof ft, "%scli_stats_ms", prefix);
    for (size_t r = 0; r < b->reps; r++) {
        char id[37], ent[32];
        bp_id bid;
        memcpy(bid.b, smp[r % ns].id, 16);
        bp_id_format(&bid, id);
        snprintf(ent, sizeof ent, "entity:%llu", (unsigned long long)(smp[r % ns].i % b->entities));
        run_cli(b, fg, "get", id, NULL, NULL);
        run_cli(b, fs, "stream", ent, "--limit", "10");
        run_cli(b, ft, "stats", NULL, NULL, NULL);
    }
}

void bench_big(const char *cache, const char *cli, size_t n, size_t entities, size_t payload,
               size_t reps) {
    big *b = bench_calloc(1, sizeof *b);
    b->n = n;
    b->entities = entities;
    b->payload = payload;
    b->reps = reps;
    if (cache)
        snprintf(b->cache, sizeof b->cache, "%s", cache);
    else
        snprintf(b->cache, sizeof b->cache, "/var/tmp/batpak-bench/big-%zu", n);
    snprintf(b->store, sizeof b->store, "%s/store", b->cache);
    snprintf(b->ids, sizeof b->ids, "%s/ids", b->cache);
    snprintf(b->marker, sizeof b->marker, "%s/marker", b->cache);
    snprintf(b->wl, sizeof b->wl, "big%zuk_batpak/p%zu", n / 1000, payload);
    ssize_t len = readlink("/proc/self/exe", b->self, sizeof b->self - 1);
    if (len <= 0) bench_die("big: /proc/self/exe: %s", strerror(errno));
    b->self[len] = '\0';
    if (cli)
        snprintf(b->cli, sizeof b->cli, "%s", cli);
    else { /* the CLI built next to this program */
        snprintf(b->cli, sizeof b->cli, "%s", b->self);
        char *slash = strrchr(b->cli, '/');
        snprintf(slash + 1, sizeof b->cli - (size_t)(slash + 1 - b->cli), "batpak");
    }
    if (access(b->cli, X_OK))
        bench_die("big: the batpak CLI '%s' is not there (build the target batpak_cli, or give "
                  "--cli PATH)",
                  b->cli);
    ensure_store(b);
    double events = (double)b->count;
    put(b->wl, "disk_per_event", (double)bench_disk_usage(b->store) / events, "B");
    put(b->wl, "fidx_per_event", (double)bench_fidx_bytes(b->store) / events, "B");
    put(b->wl, "disk_mb", (double)bench_disk_usage(b->store) / 1048576.0, "MB");
    put(b->wl, "fidx_mb", (double)bench_fidx_bytes(b->store) / 1048576.0, "MB");
    probe(b, "warm"); /* the page cache warm; nothing printed */
    for (size_t r = 0; r < reps; r++)
        probe(b, "clean");
    sample smp[64];
    FILE *f = fopen(b->ids, "rb");
    size_t ns = f ? fread(smp, sizeof *smp, 64, f) : 0;
    if (f) fclose(f);
    if (!ns) bench_die("big: %s holds no ids", b->ids);
    /* the targets are for a warm page cache: the workloads before this one may have pushed
     * the store's pages out, and each command reads other pages (its own id, entity) */
    bench_warm_files(b->store);
    run_clis(b, "", smp, ns);
    /* the same beside a live writer whose newest segment holds many events not sealed */
    uint64_t m = b->n / 40 < LIVE_EVENTS ? b->n / 40 : LIVE_EVENTS;
    int pfd[2];
    if (m && !pipe(pfd)) {
        pid_t pid = live_start(b, m, pfd[1]);
        char c;
        if (read(pfd[0], &c, 1) != 1) bench_die("big: the live writer did not start");
        put(b->wl, "live_unsealed_events", (double)m, "");
        bench_warm_files(b->store);
        run_clis(b, "live_", smp, ns);
        run_ui(b, "live_", smp, ns);
        int st;
        if (kill(pid, SIGTERM) || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
            bench_die("big: the live writer did not close cleanly");
        close(pfd[0]);
        close(pfd[1]);
        b->count += m;
        marker_write(b);
    }
    /* kill -9: the marker goes until the store is closed cleanly again (by the probe) */
    remove(b->marker);
    for (size_t r = 0; r < reps; r++) {
        append_and_kill(b);
        probe(b, "killed");
    }
    marker_write(b);
    free(b);
}
