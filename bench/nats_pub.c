/*
 * nats_pub.c — the relay next to a plain libnats publisher, on the same JetStream server.
 *
 *   batpak-bench-nats --workload pub|relay --url nats://127.0.0.1:PORT [--n N] [--payload B]
 *                     [--dir DIR]
 *
 * Both build the same store (N events of B bytes of payload, entity `entity:<i mod 1000>`,
 * scope `scope:<i mod 16>`; not timed) in DIR and then send its events to a fresh JetStream
 * stream (file storage, subjects `bench.<stream>.>`), which is deleted afterwards:
 *
 *   pub    a plain async publisher: the frame bodies are read from the store beforehand (not
 *          timed); the timed loop builds each message with the relay's subject and headers
 *          (unique Nats-Msg-Id = event id), js_PublishMsgAsync with libnats' defaults, then
 *          js_PublishAsyncComplete: every ack received, none failed.
 *   relay  bp_relay_start on the store, timed until bp_relay_wait sees global_seq N
 *          acknowledged (its checkpoint persisted), then bp_relay_stop.
 *
 * Each checks that the stream holds N messages. Output: result lines like batpak-bench's,
 * "R<TAB>batpak<TAB>relay_batpak/pB<TAB>pub|relay<TAB>ev/s<TAB>ev/s", and the CPU time (user +
 * system, all threads) of the timed part per event, "pub_cpu_per_event" / "relay_cpu_per_event"
 * in µs (the relay's includes its wait loop's 2 ms polls); bench/run.sh starts
 * the server, runs both REPS times and checks relay >= 0.8x pub.
 */
#include "store/store.h"

#include <batpak/batpak.h>
#include <batpak/replicate.h>
#include <errno.h>
#include <ftw.h>
#include <nats/nats.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static struct {
    const char *workload, *url, *dir;
    size_t n, payload;
} cfg = {NULL, NULL, "/var/tmp/batpak-bench-nats", 200000, 100};

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-nats: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void must(bp_status rc, const char *what) {
    if (rc) die("%s: %s (%s)", what, bp_strerror(rc), bp_last_error());
}

static void must_nats(natsStatus ns, const char *what) {
    if (ns != NATS_OK) die("%s: %s %s", what, natsStatus_GetText(ns), nats_GetLastError(NULL));
}

/* CPU seconds (user + system) of this process so far: all its threads, libnats' included. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double g_cpu; /* CPU seconds of the timed part */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void fresh_dir(const char *d) {
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The store of the workload: n events, unsynced appends, then one sync. */
static bp_store *build_store(void) {
    fresh_dir(cfg.dir);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    must(bp_store_open(&s, cfg.dir, &o), "open");
    uint8_t *p = malloc(cfg.payload);
    if (!p) die("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char ent[32], scope[32];
    for (size_t i = 0; i < cfg.n; i++) {
        for (size_t k = 0; k < cfg.payload; k++) { /* incompressible, like batpak-bench's */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p[k] = (uint8_t)x;
        }
        snprintf(ent, sizeof ent, "entity:%zu", i % 1000);
        snprintf(scope, sizeof scope, "scope:%zu", i % 16);
        must(bp_append(s, NULL, ent, scope, BP_KIND(1, 1 + i % 8), p, cfg.payload), "append");
    }
    must(bp_store_sync(s), "sync");
    free(p);
    return s;
}

static void stream_make(jsCtx *js, const char *name, const char *prefix) {
    char subject[128];
    snprintf(subject, sizeof subject, "%s.>", prefix);
    const char *subjects[] = {subject};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    js_DeleteStream(js, name, NULL, &jerr); /* a leftover of an interrupted run */
    must_nats(js_AddStream(&si, js, &sc, NULL, &jerr), "create stream");
    jsStreamInfo_Destroy(si);
}

/* Check the stream holds n messages, then delete it. */
static void stream_check_drop(jsCtx *js, const char *name) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    must_nats(js_GetStreamInfo(&si, js, name, NULL, &jerr), "stream info");
    uint64_t msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (msgs != cfg.n)
        die("stream %s holds %llu messages, expected %zu", name, (unsigned long long)msgs, cfg.n);
    must_nats(js_DeleteStream(js, name, NULL, &jerr), "delete stream");
}

static atomic_ulong g_failed;
static char g_fail_text[256];

static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js;
    (void)closure;
    if (atomic_fetch_add(&g_failed, 1) == 0)
        snprintf(g_fail_text, sizeof g_fail_text, "%s %s", natsStatus_GetText(pae->Err),
                 pae->ErrText ? pae->ErrText : "");
}

/* A plain async publisher of the store's events (bodies and headers as the relay sends). */
static double wl_pub(bp_store *s, natsConnection *nc) {
    bp_buf *bodies = calloc(cfg.n, sizeof *bodies);
    bp_event **evs = calloc(cfg.n, sizeof *evs);
    if (!bodies || !evs) die("out of memory");
    bp_cursor *c;
    bp_region all = BP_REGION_INIT;
    must(bp_cursor_open(s, &c, &all, 0), "cursor");
    for (size_t i = 0; i < cfg.n; i++) {
        const bp_event *ev;
        size_t got;
        must(bp_cursor_next(c, &ev, 1, &got, 0), "cursor next");
        if (got != 1) die("the store has %zu events, expected %zu", i, cfg.n);
        must(bp_get(s, &evs[i], &ev->event_id), "get");
        must(bp_read_body(s, ev->global_seq, &bodies[i]), "read body");
    }
    bp_cursor_free(c);
    char store_id[37];
    bp_id sid;
    bp_store_uuid(s, sid.b);
    bp_id_format(&sid, store_id);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.ErrHandler = on_pub_err;
    jsCtx *js;
    must_nats(natsConnection_JetStream(&js, nc, &jo), "JetStream");
    const char *stream = "benchpub", *prefix = "bench.benchpub";
    stream_make(js, stream, prefix);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;

    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < cfg.n; i++) {
        const bp_event *ev = evs[i];
        char subject[64], id[37], hash[65], num[24], kind[8];
        snprintf(subject, sizeof subject, "%s.%04x", prefix, ev->kind);
        natsMsg *m = NULL;
        must_nats(
            natsMsg_Create(&m, subject, NULL, (const char *)bodies[i].data, (int)bodies[i].len),
            "message");
        bp_id_format(&ev->event_id, id);
        bp_hash_format(&ev->event_hash, hash);
        snprintf(kind, sizeof kind, "0x%04x", ev->kind);
        natsStatus ns = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Store", store_id);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Event-Id", id);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Entity", ev->entity);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Scope", ev->scope);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Kind", kind);
        snprintf(num, sizeof num, "%llu", (unsigned long long)ev->global_seq);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Seq", num);
        snprintf(num, sizeof num, "%llu", (unsigned long long)ev->clock);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Clock", num);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Batpak-Hash", hash);
        must_nats(ns, "headers");
        must_nats(js_PublishMsgAsync(js, &m, NULL), "publish");
        natsMsg_Destroy(m);
    }
    must_nats(js_PublishAsyncComplete(js, &po), "acks");
    double dt = now_s() - t0;
    g_cpu = cpu_s() - c0;
    if (atomic_load(&g_failed))
        die("%lu publishes failed: %s", atomic_load(&g_failed), g_fail_text);
    stream_check_drop(js, stream);
    jsCtx_Destroy(js);
    for (size_t i = 0; i < cfg.n; i++) {
        bp_buf_free(&bodies[i]);
        bp_event_free(evs[i]);
    }
    free(bodies);
    free(evs);
    return (double)cfg.n / dt;
}

/* The relay from the store's start until the server acknowledged its last event. */
static double wl_relay(bp_store *s, natsConnection *nc) {
    jsCtx *js;
    must_nats(natsConnection_JetStream(&js, nc, NULL), "JetStream");
    const char *stream = "benchrelay";
    stream_make(js, stream, "bench.benchrelay");
    bp_relay_config rc = BP_RELAY_CONFIG_INIT;
    rc.url = cfg.url;
    rc.stream = stream;
    rc.subject_prefix = "bench.benchrelay";
    rc.ack_timeout_ms = 60000;
    double t0 = now_s(), c0 = cpu_s();
    bp_relay *r;
    must(bp_relay_start(s, &r, &rc), "relay start");
    must(bp_relay_wait(r, cfg.n, 600000), "relay wait");
    double dt = now_s() - t0;
    g_cpu = cpu_s() - c0;
    bp_relay_stats st = BP_RELAY_STATS_INIT;
    bp_relay_stats_get(r, &st);
    must(bp_relay_stop(r), "relay stop");
    if (st.published != cfg.n)
        die("the relay published %llu of %zu", (unsigned long long)st.published, cfg.n);
    stream_check_drop(js, stream);
    jsCtx_Destroy(js);
    return (double)cfg.n / dt;
}

static void usage(void) {
    fprintf(stderr, "usage: batpak-bench-nats --workload pub|relay --url NATS_URL [--n N] "
                    "[--payload BYTES] [--dir DIR]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--workload"))
            cfg.workload = v;
        else if (!strcmp(a, "--url"))
            cfg.url = v;
        else if (!strcmp(a, "--dir"))
            cfg.dir = v;
        else if (!strcmp(a, "--n") || !strcmp(a, "--payload")) {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (errno || *end || end == v || !x) die("%s: not a positive number: '%s'", a, v);
            *(!strcmp(a, "--n") ? &cfg.n : &cfg.payload) = (size_t)x;
        } else
            usage();
    }
    if (!cfg.workload || !cfg.url) usage();
    bool pub = !strcmp(cfg.workload, "pub");
    if (!pub && strcmp(cfg.workload, "relay")) usage();
    printf("V\tnats\tlibnats %s\n", nats_GetVersion());
    printf("# batpak: relay/%s n=%zu payload=%zu\n", cfg.workload, cfg.n, cfg.payload);
    fflush(stdout);
    bp_store *s = build_store();
    natsConnection *nc;
    must_nats(natsConnection_ConnectTo(&nc, cfg.url), cfg.url);
    double rate = pub ? wl_pub(s, nc) : wl_relay(s, nc);
    natsConnection_Destroy(nc);
    must(bp_store_close(s), "close");
    printf("R\tbatpak\trelay_batpak/p%zu\t%s\t%.6g\tev/s\n", cfg.payload, cfg.workload, rate);
    printf("R\tbatpak\trelay_batpak/p%zu\t%s_cpu_per_event\t%.6g\tus\n", cfg.payload, cfg.workload,
           g_cpu * 1e6 / (double)cfg.n);
    fresh_dir(cfg.dir);
    nats_Close();
    return 0;
}
