/*
 * follow.c — the follow workload: how soon a reader in another process has an event the
 * writer appended durably (batpak only: the peers have no cross-process wake-up to compare).
 *
 *   batpak-bench --backend batpak --workload follow [--n N] [--payload BYTES]
 *
 * The writer process makes a store, then forks a follower process, which opens the store
 * read-only and reads every new event with bp_cursor_next, waiting in the library (its
 * follower thread sleeps on DIR/LIVE's wake-up word until the writer publishes). The writer
 * then appends single BP_DURABLE events of BYTES bytes: first N / 10 of them at 1,000 appends
 * per second (one every millisecond, on a monotonic schedule), then N as fast as it can. For
 * every event, the writer notes in memory shared with the follower the time its bp_append
 * returned (the receipt), and the follower the time it was handed the event; the latency is
 * the difference (0 when the follower had it before the writer's call returned).
 *
 * Figures (workload follow_batpak/p<BYTES>):
 *   rate1000_p50, rate1000_p99  latency at 1,000 appends/s (ms)
 *   full_p50, full_p99          latency at full speed (ms)
 *   full_append                 the writer's appends per second at full speed, follower on
 */
#include "bench.h"

#include <batpak/batpak.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void bench_follow(const char *dir, size_t n, size_t payload);

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "follow: %s: %s\n", what, bp_last_error());
    exit(1);
}

/* The follower: every event from seq first on, until seq last, its time noted in got[]. */
static void follower(const char *dir, uint64_t first, uint64_t last, uint64_t *got,
                     volatile uint32_t *ready) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    o.create = false;
    bp_store *s;
    if (bp_store_open(&s, dir, &o)) die("follower open");
    bp_cursor *c;
    bp_region all = BP_REGION_INIT;
    if (bp_cursor_open(s, &c, &all, first - 1)) die("cursor");
    const bp_event *evs[256];
    size_t k = 0;
    /* the first wait starts the follower thread: the writer waits for this */
    (void)bp_cursor_next(c, evs, 256, &k, 1);
    __atomic_store_n(ready, 1, __ATOMIC_SEQ_CST);
    uint64_t seen = first - 1 + k;
    for (size_t i = 0; i < k; i++)
        got[evs[i]->global_seq] = mono_ns();
    while (seen < last) {
        bp_status rc = bp_cursor_next(c, evs, 256, &k, 1000);
        uint64_t now = mono_ns();
        if (rc == BP_ETIMEDOUT) continue;
        if (rc) die("cursor next");
        for (size_t i = 0; i < k; i++)
            if (evs[i]->global_seq <= last) got[evs[i]->global_seq] = now;
        seen = evs[k - 1]->global_seq;
    }
    bp_cursor_free(c);
    bp_store_close(s);
    _exit(0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void put(const char *wl, const char *fig, double v, const char *unit) {
    printf("R\tbatpak\t%s\t%s\t%.6g\t%s\n", wl, fig, v, unit);
}

static void lat_figures(const char *wl, const char *name, const uint64_t *rec, const uint64_t *got,
                        uint64_t from, uint64_t to) {
    size_t m = (size_t)(to - from + 1);
    double *v = malloc(m * sizeof *v);
    if (!v) die("out of memory");
    for (uint64_t q = from; q <= to; q++)
        v[q - from] = got[q] > rec[q] ? (double)(got[q] - rec[q]) / 1e6 : 0.0;
    qsort(v, m, sizeof *v, cmp_double);
    char f[64];
    snprintf(f, sizeof f, "%s_p50", name);
    put(wl, f, v[(size_t)((double)(m - 1) * 0.50)], "ms");
    snprintf(f, sizeof f, "%s_p99", name);
    put(wl, f, v[(size_t)((double)(m - 1) * 0.99)], "ms");
    free(v);
}

void bench_follow(const char *dir, size_t n, size_t payload) {
    size_t slow = n / 10 ? n / 10 : 1;
    uint64_t total = slow + n + 1;
    /* rec[seq]: the writer's receipt; got[seq]: the follower's hand; ready: its wait began */
    size_t bytes = (size_t)(total + 2) * 2 * sizeof(uint64_t) + 64;
    uint8_t *shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) die("mmap");
    volatile uint32_t *ready = (volatile uint32_t *)shm;
    uint64_t *rec = (uint64_t *)(shm + 64), *got = rec + total + 2;
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    if (bp_store_open(&s, dir, &o)) die("open");
    uint8_t *pay = malloc(payload ? payload : 1);
    if (!pay) die("out of memory");
    memset(pay, 0x42, payload);
    if (bp_append(s, NULL, "follow:0", "bench", 0x1001, pay, payload)) die("append");
    fflush(stdout);
    pid_t kid = fork();
    if (kid < 0) die("fork");
    if (kid == 0) follower(dir, 2, total, got, ready);
    while (!__atomic_load_n(ready, __ATOMIC_SEQ_CST))
        usleep(100);
    char entity[32];
    bp_append_options ao = BP_APPEND_OPTIONS_INIT;
    ao.durability = BP_DURABLE;
    uint64_t next = mono_ns(), t0 = 0, t1 = 0;
    for (uint64_t q = 2; q <= total; q++) {
        bool paced = q < 2 + slow;
        if (paced) { /* one every millisecond */
            next += 1000000u;
            uint64_t now;
            while ((now = mono_ns()) < next)
                if (next - now > 60000u) usleep((useconds_t)((next - now - 50000u) / 1000u));
        } else if (!t0) {
            t0 = mono_ns();
        }
        snprintf(entity, sizeof entity, "follow:%llu", (unsigned long long)(q % 1000));
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_ex(s, &r, entity, "bench", 0x1001, pay, payload, &ao)) die("append");
        rec[r.global_seq] = mono_ns();
    }
    t1 = mono_ns();
    int st;
    uint64_t deadline = mono_ns() + 30000000000u;
    while (waitpid(kid, &st, WNOHANG) == 0) {
        if (mono_ns() > deadline) {
            kill(kid, SIGKILL);
            waitpid(kid, &st, 0);
            fprintf(stderr, "follow: the follower did not see every event within 30 s\n");
            exit(1);
        }
        usleep(1000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "follow: the follower failed\n");
        exit(1);
    }
    char wl[64];
    snprintf(wl, sizeof wl, "follow_batpak/p%zu", payload);
    lat_figures(wl, "rate1000", rec, got, 2, 1 + slow);
    lat_figures(wl, "full", rec, got, 2 + slow, total);
    put(wl, "full_append", (double)n / ((double)(t1 - t0) / 1e9), "ev/s");
    bp_store_close(s);
    free(pay);
    munmap(shm, bytes);
}
