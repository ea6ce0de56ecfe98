/* Replication through NATS JetStream (batpak/replicate.h), against a real nats-server that
 * the test starts on 127.0.0.1 (tests/nats_server.h): bad input, 100k events relayed and
 * followed into a replica that matches the source byte for byte, relay and follower
 * SIGKILLed mid-stream, nats-server killed and restarted mid-stream, both stopped while the
 * server is away, the message format, messages out of order and twice, tampered and foreign
 * messages, a replica of something else.
 *
 * Each test runs in a child of the main process (run_isolated), with a server of its own:
 * libnats starts threads, and a process that forks relays and followers (the SIGKILL test)
 * must not have used libnats before. The main process never calls into libnats.
 *
 * Environment: BP_REPL_EVENTS (events of the 100k test), BP_REPL_KILLS (SIGKILLs of the
 * relay and of the follower each; the CTest label torture sets 200), BP_REPL_BACKLOG (events
 * relayed across nats-server restarts), BP_REPL_SERVER_RESTARTS, BP_REPL_SEED, BP_REPL_ONLY
 * (run only the tests whose name contains it). */
#include "t.h"
#include "nats_server.h"
#include "deliver/deliver_impl.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#ifdef BP_HAVE_NATS
#include <nats/nats.h>
#endif

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v && *v ? atol(v) : dflt;
}

static long now_ms(void) {
    return ns_now_ms();
}

/* ------------------------------------------------------------------ stores */

static uint64_t published_seq(bp_store *s) {
    bp_store_diagnostics d;
    d.struct_size = sizeof d;
    return bp_store_diagnostics_get(s, &d) == BP_OK ? d.published_seq : 0;
}

static uint64_t event_count(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    return bp_store_stats_get(s, &st) == BP_OK ? st.events : UINT64_MAX;
}

static bp_status export_all(bp_store *s, t_membuf *m) {
    m->n = 0;
    if (m->p) m->p[0] = '\0';
    return bp_export(s, t_to_mem, m, NULL);
}

/* Byte-identical; else print where they first differ. */
static bool same_export(const t_membuf *got, const t_membuf *want) {
    if (got->n == want->n && (got->n == 0 || memcmp(got->p, want->p, got->n) == 0)) return true;
    size_t i = 0, line = 1, bol = 0;
    size_t n = got->n < want->n ? got->n : want->n;
    for (; i < n && got->p[i] == want->p[i]; i++)
        if (got->p[i] == '\n') line++, bol = i + 1;
    fprintf(stderr, "  exports differ: replica %zu bytes, source %zu bytes, first at line %zu\n",
            got->n, want->n, line);
    if (bol < got->n)
        fprintf(stderr, "  replica: %.300s\n", got->p + bol);
    else
        fprintf(stderr, "  replica: (ends)\n");
    if (bol < want->n)
        fprintf(stderr, "  source:  %.300s\n", want->p + bol);
    else
        fprintf(stderr, "  source:  (ends)\n");
    return false;
}

/* The replica opens read-only, verifies clean, holds `events` events and exports exactly
 * want. */
static void check_replica(const char *dir, const t_membuf *want, uint64_t events) {
    bp_store *r = t_open(dir, &(t_open_opts){.read_only = true, .no_create = true});
    CHECK(r != NULL);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status rc = bp_store_verify(r, &vr, NULL);
    if (rc != BP_OK) fprintf(stderr, "  replica verify: %s\n", vr.first_problem);
    CHECK_OK(rc);
    CHECK_EQ(vr.problems, 0);
    CHECK_EQ(vr.events, events);
    CHECK_EQ(event_count(r), events);
    t_membuf got = {0};
    rc = export_all(r, &got);
    bp_store_close(r);
    CHECK_OK(rc);
    bool same = same_export(&got, want);
    free(got.p);
    CHECK(same);
}

#define CHECK_REPLICA(dir, want, events)                                                           \
    do {                                                                                           \
        int _f = t_failures;                                                                       \
        check_replica((dir), (want), (events));                                                    \
        if (t_failures != _f) return;                                                              \
    } while (0)

/* --------------------------------------------------------- event generator */

/* Appends a reproducible mix: single BP_NO_SYNC events and atomic batches of 2..50, 100-byte
 * payloads, several kinds and scopes, some idempotency keys, causation and correlation ids. */
typedef struct gen {
    uint64_t rng;
    uint32_t entities;
    uint32_t batch_per_mille; /* chance that one step is a batch */
    uint64_t appended;        /* events this generator committed */
    uint64_t keys;            /* idempotency keys used */
    uint64_t batches;
    char tag[48]; /* makes idempotency keys unique across generators and processes */
    bp_id recent[32];
    uint32_t n_recent;
} gen;

#define PAYLOAD_LEN 100
#define BATCH_MAX_ITEMS 50

static uint64_t rnd(gen *g) {
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ull;
}

static void gen_init(gen *g, uint64_t seed, const char *tag, uint32_t entities,
                     uint32_t batch_per_mille) {
    memset(g, 0, sizeof *g);
    g->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    g->entities = entities;
    g->batch_per_mille = batch_per_mille;
    snprintf(g->tag, sizeof g->tag, "%s", tag);
}

static void gen_payload(gen *g, uint8_t *p) {
    for (int i = 0; i < PAYLOAD_LEN; i++)
        p[i] = (uint8_t)(' ' + rnd(g) % 95);
}

static void gen_opts(gen *g, bp_append_options *o, char *key, size_t cap) {
    bp_append_options init = BP_APPEND_OPTIONS_INIT;
    *o = init;
    if (rnd(g) % 8 == 0) {
        snprintf(key, cap, "%s-%llu", g->tag, (unsigned long long)g->keys++);
        o->idempotency_key = key;
    }
    if (g->n_recent && rnd(g) % 6 == 0) o->causation_id = &g->recent[rnd(g) % g->n_recent];
    if (g->n_recent && rnd(g) % 6 == 0) o->correlation_id = &g->recent[rnd(g) % g->n_recent];
}

static void gen_remember(gen *g, const bp_id *id) {
    if (g->n_recent < 32)
        g->recent[g->n_recent++] = *id;
    else
        g->recent[rnd(g) % 32] = *id;
}

static const char *const scopes[] = {"bank", "shop", "ops"};

/* One append or one batch, never past max_events in all. *last: the last global_seq. */
static bp_status gen_step(bp_store *s, gen *g, uint64_t max_events, uint64_t *last) {
    uint64_t room = max_events - g->appended;
    char entity[BATCH_MAX_ITEMS][32];
    uint8_t payload[BATCH_MAX_ITEMS][PAYLOAD_LEN];
    char key[BATCH_MAX_ITEMS][64];
    bp_append_options opts[BATCH_MAX_ITEMS];
    bp_batch_item items[BATCH_MAX_ITEMS];
    bp_receipt rec[BATCH_MAX_ITEMS];
    t_receipts(rec, sizeof rec / sizeof rec[0]);
    size_t n = 1;
    bool batch = room >= 2 && rnd(g) % 1000 < g->batch_per_mille;
    if (batch) {
        n = 2 + rnd(g) % (BATCH_MAX_ITEMS - 1);
        if (n > room) n = (size_t)room;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(entity[i], sizeof entity[i], "acct:%u", (unsigned)(rnd(g) % g->entities));
        gen_payload(g, payload[i]);
        gen_opts(g, &opts[i], key[i], sizeof key[i]);
        items[i].entity = entity[i];
        items[i].scope = scopes[rnd(g) % 3];
        items[i].kind = BP_KIND(1, 1 + rnd(g) % 6);
        items[i].payload = payload[i];
        items[i].len = PAYLOAD_LEN;
        items[i].opts = &opts[i];
    }
    bp_status rc;
    if (batch) {
        rc = bp_append_batch(s, rec, items, n);
        g->batches++;
    } else {
        opts[0].durability = BP_NO_SYNC;
        rc = bp_append_ex(s, rec, items[0].entity, items[0].scope, items[0].kind, payload[0],
                          PAYLOAD_LEN, &opts[0]);
    }
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        gen_remember(g, &rec[i].event_id);
    g->appended += n;
    *last = rec[n - 1].global_seq;
    return BP_OK;
}

static bp_status gen_append(bp_store *s, gen *g, uint64_t n, uint64_t *last) {
    uint64_t goal = g->appended + n;
    while (g->appended < goal) {
        bp_status rc = gen_step(s, g, goal, last);
        if (rc) return rc;
    }
    return BP_OK;
}

/* ---------------------------------------------------------- configurations */

static bp_relay_config relay_cfg(const char *url, const char *stream) {
    bp_relay_config c = BP_RELAY_CONFIG_INIT;
    c.url = url;
    c.stream = stream;
    return c;
}

static bp_follow_config follow_cfg(const char *url, const char *stream) {
    bp_follow_config c = BP_FOLLOW_CONFIG_INIT;
    c.url = url;
    c.stream = stream;
    c.until_caught_up = true;
    return c;
}

/* Relay everything s holds to stream, then stop the relay. */
static bp_status relay_all(bp_store *s, const char *url, const char *stream) {
    bp_relay_config c = relay_cfg(url, stream);
    bp_relay *r;
    bp_status rc = bp_relay_start(s, &r, &c);
    if (rc) return rc;
    rc = bp_relay_wait(r, published_seq(s), 60000);
    bp_status rc2 = bp_relay_stop(r);
    return rc ? rc : rc2;
}

/* -------------------------------------------------- children of the tests */

/* Children a test forks (relays, followers): killed by the runner after the test. */
static pid_t kids[8];

static void kid_add(pid_t p) {
    for (int i = 0; i < 8; i++)
        if (kids[i] == 0) {
            kids[i] = p;
            return;
        }
}

static void kid_forget(pid_t p) {
    for (int i = 0; i < 8; i++)
        if (kids[i] == p) kids[i] = 0;
}

static void kill_kids(void) {
    for (int i = 0; i < 8; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

/* Wait at most timeout_ms for child pid; 0 (and *st) when it ended, -1 when it did not. */
static int wait_child(pid_t pid, long timeout_ms, int *st) {
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t w = waitpid(pid, st, WNOHANG);
        if (w == pid) {
            kid_forget(pid);
            return 0;
        }
        if (w < 0 || now_ms() > deadline) return -1;
        ns_sleep_ms(5);
    }
}

static void describe_exit(const char *who, int st) {
    if (WIFEXITED(st))
        fprintf(stderr, "  %s exited with status %d\n", who, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        fprintf(stderr, "  %s died of signal %d\n", who, WTERMSIG(st));
}

/* ------------------------------------------------------- (a) not compiled */

static void test_not_built(void) {
    const char *dir = t_dir("repl-notsup");
    bp_store *s = t_open(dir, NULL);
    CHECK(s != NULL);
    bp_relay_config c = relay_cfg("nats://127.0.0.1:4222", "x");
    bp_relay *r = (bp_relay *)&c;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_ENOTSUP, "libnats");
    CHECK(r == NULL);
    bp_follow_config f = follow_cfg("nats://127.0.0.1:4222", "x");
    CHECK_FAILS(bp_follow(NULL, dir, &f), BP_ENOTSUP, "libnats");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------ (b) bad input */

static void test_bad_input(void) {
    const char *dir = t_dir("repl-bad");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir);
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), "x", 1));

    /* names are 1..57 of [A-Za-z0-9_-] (the default checkpoint id relay.STREAM is <= 63) */
    static char long_name[59], longer_name[65], max_name[58];
    memset(long_name, 'a', 58);
    memset(longer_name, 'a', 64);
    memset(max_name, 'b', 57);
    max_name[0] = 'Z';
    max_name[1] = '_';
    max_name[2] = '-';
    max_name[3] = '9';
    const char *bad_streams[] = {"",          "with space", "with.dot", long_name,
                                 longer_name, "star*",      "tail>",    "a/b"};

    const bp_relay_config good = relay_cfg(ns->url, "good");
    bp_relay_config c;
    bp_relay *r = NULL;
    c = good;
    c.url = NULL;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "url");
    c.url = "";
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "url");
    c = good;
    c.stream = NULL;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "stream");
    for (size_t i = 0; i < sizeof bad_streams / sizeof *bad_streams; i++) {
        c.stream = bad_streams[i];
        CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "stream");
    }
    c = good;
    c.struct_size = 0;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "struct_size");
    c.struct_size = sizeof c + 1;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "struct_size");
    c = good;
    c.batch = 4097;
    CHECK_FAILS(bp_relay_start(s, &r, &c), BP_EINVAL, "batch");
    CHECK_EQ(bp_relay_start(NULL, &r, &good), BP_EINVAL);
    CHECK_EQ(bp_relay_start(s, &r, NULL), BP_EINVAL);
    CHECK_EQ(bp_relay_start(s, NULL, &good), BP_EINVAL);
    CHECK_OK(bp_relay_stop(NULL));

    /* a second relay with the same checkpoint id is refused while the first runs */
    CHECK_OK(bp_relay_start(s, &r, &good));
    bp_relay *r2 = NULL;
    CHECK_FAILS(bp_relay_start(s, &r2, &good), BP_EBUSY, "relay.good");
    CHECK_OK(bp_relay_wait(r, published_seq(s), 30000));
    CHECK_OK(bp_relay_stop(r));
    CHECK_OK(bp_store_close(s));

    /* a relay keeps a checkpoint: not on a read-only store */
    s = t_open(src, &(t_open_opts){.read_only = true, .no_create = true});
    CHECK(s != NULL);
    r = NULL;
    bp_status rc = bp_relay_start(s, &r, &good);
    if (rc == BP_OK) bp_relay_stop(r);
    CHECK_EQ(rc, BP_EREADONLY);
    CHECK_OK(bp_store_close(s));

    const bp_follow_config fgood = follow_cfg(ns->url, "good");
    bp_follow_config f;
    f = fgood;
    f.url = NULL;
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "url");
    f.url = "";
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "url");
    f = fgood;
    f.stream = NULL;
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "stream");
    for (size_t i = 0; i < sizeof bad_streams / sizeof *bad_streams; i++) {
        f.stream = bad_streams[i];
        CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "stream");
    }
    f = fgood;
    f.struct_size = 0;
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "struct_size");
    f.struct_size = sizeof f + 1;
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "struct_size");
    f = fgood;
    f.batch = 4097;
    CHECK_FAILS(bp_follow(NULL, replica, &f), BP_EINVAL, "batch");
    CHECK_EQ(bp_follow(NULL, NULL, &fgood), BP_EINVAL);
    CHECK_EQ(bp_follow(NULL, replica, NULL), BP_EINVAL);

    /* a stream nobody created */
    f = fgood;
    f.stream = "nosuchstream";
    bp_follow_report rep = BP_FOLLOW_REPORT_INIT;
    memset(&rep, 0xff, sizeof rep);
    rep.struct_size = sizeof rep;
    CHECK_FAILS(bp_follow(&rep, replica, &f), BP_ENOTFOUND, "nosuchstream");
    CHECK_EQ(rep.applied, 0); /* filled on error too */
    CHECK_EQ(rep.messages, 0);
    /* the relayed stream can be followed (the limit names too) */
    CHECK_OK(bp_follow(&rep, replica, &fgood));
    CHECK_EQ(rep.applied, 1);

    /* the limits themselves are accepted: a 57-character name, batches of 4096 */
    s = t_open(src, NULL);
    CHECK(s != NULL);
    c = good;
    c.stream = max_name;
    c.batch = 4096;
    r = NULL;
    rc = bp_relay_start(s, &r, &c);
    if (rc == BP_OK) rc = bp_relay_wait(r, published_seq(s), 30000);
    bp_relay_stop(r);
    bp_store_close(s);
    CHECK_OK(rc);
    char replica2[1300];
    snprintf(replica2, sizeof replica2, "%s/replica2", dir);
    f = fgood;
    f.stream = max_name;
    f.batch = 4096;
    CHECK_OK(bp_follow(&rep, replica2, &f));
    CHECK_EQ(rep.applied, 1);
    ns_stop(ns);
    t_rmdir(dir);
}

/* --------------------------------------------- (c) 100k events, byte for byte */

static void test_relay_follow_100k(void) {
    const char *dir = t_dir("repl-100k");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir); /* created by bp_follow */
    const uint64_t n = (uint64_t)env_long("BP_REPL_EVENTS", 100000);
    const char *stream = "bp_repl-c";

    /* with its open event: system events are replicated too */
    bp_store *s = t_open(src, &(t_open_opts){.open_event = true});
    CHECK(s != NULL);
    gen g;
    gen_init(&g, 1, "c", 1000, 30);
    uint64_t last = 0;
    long t0 = now_ms();
    CHECK_OK(gen_append(s, &g, n, &last));
    long append_ms = now_ms() - t0;
    CHECK_EQ(g.appended, n);
    CHECK_EQ(last, n + 1);
    CHECK_EQ(published_seq(s), last);

    /* relay */
    bp_relay_config rc = relay_cfg(ns->url, stream);
    bp_relay *r;
    t0 = now_ms();
    CHECK_OK(bp_relay_start(s, &r, &rc));
    bp_status st = bp_relay_wait(r, last, 300000);
    long relay_ms = now_ms() - t0;
    if (st) bp_relay_stop(r);
    CHECK_OK(st);
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    bp_relay_stats_get(r, &rs);
    CHECK_EQ(rs.position, last);
    CHECK_EQ(rs.published - rs.duplicates, last); /* each event stored once */
    CHECK_EQ(rs.lag_events, 0);
    CHECK(rs.connected);
    CHECK(rs.running);
    CHECK_EQ(rs.last_error[0], '\0');
    st = bp_relay_wait(r, last + 1, 50);
    CHECK_EQ(st, BP_ETIMEDOUT);

    /* follow into a replica that does not exist yet */
    bp_follow_config fc = follow_cfg(ns->url, stream);
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    t0 = now_ms();
    CHECK_OK(bp_follow(&fr, replica, &fc));
    long follow_ms = now_ms() - t0;
    CHECK_EQ(fr.applied, last);
    CHECK_EQ(fr.messages, last);
    CHECK_EQ(fr.skipped, 0);
    CHECK_EQ(fr.stream_seq, last);
    CHECK_EQ(fr.global_seq, last);
    fprintf(stderr,
            "  throughput: relay %.0f ev/s, follow %.0f ev/s (%llu events, %llu batches; "
            "appends %ld ms, relay %ld ms, follow %ld ms)\n",
            (double)last * 1000.0 / (double)(relay_ms ? relay_ms : 1),
            (double)last * 1000.0 / (double)(follow_ms ? follow_ms : 1), (unsigned long long)last,
            (unsigned long long)g.batches, append_ms, relay_ms, follow_ms);

    t_membuf want = {0};
    CHECK_OK(export_all(s, &want));
    CHECK_REPLICA(replica, &want, last);

    /* again: nothing new, nothing applied, the replica unchanged */
    CHECK_OK(bp_follow(&fr, replica, &fc));
    CHECK_EQ(fr.applied, 0);
    CHECK_EQ(fr.global_seq, last);
    CHECK_REPLICA(replica, &want, last);

    /* incremental: more events, relayed by the running relay, followed */
    uint64_t last2 = 0;
    CHECK_OK(gen_append(s, &g, 1000, &last2));
    CHECK_EQ(last2, last + 1000);
    CHECK_OK(bp_relay_wait(r, last2, 60000));
    CHECK_OK(bp_follow(&fr, replica, &fc));
    CHECK_EQ(fr.applied, 1000);
    CHECK_EQ(fr.stream_seq, last2);
    CHECK_EQ(fr.global_seq, last2);
    CHECK_OK(export_all(s, &want));
    CHECK_REPLICA(replica, &want, last2);

    /* stop persists the position: a new relay publishes nothing again */
    CHECK_OK(bp_relay_stop(r));
    CHECK_OK(bp_store_close(s));
    s = t_open(src, NULL);
    CHECK(s != NULL);
    CHECK_OK(bp_relay_start(s, &r, &rc));
    CHECK_OK(bp_relay_wait(r, last2, 10000));
    bp_relay_stats_get(r, &rs);
    CHECK_EQ(rs.position, last2);
    CHECK_EQ(rs.published, 0);
    CHECK_OK(bp_relay_stop(r));
    CHECK_OK(bp_follow(&fr, replica, &fc));
    CHECK_EQ(fr.applied, 0);
    CHECK_OK(bp_store_close(s));
    free(want.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* ------------------------------------- (d) relay and follower SIGKILLed often */

#define KILL_STREAM "bp_repl-kill"

static volatile int relay_child_stop;

static void *relay_child_sigwait(void *arg) {
    int sig;
    sigwait((const sigset_t *)arg, &sig);
    relay_child_stop = 1;
    return NULL;
}

/* Owns the source store: opens it, starts a relay, appends (single events and batches)
 * until SIGTERM (or, with max_events, until that many are appended and relayed). */
static void relay_child(pid_t parent, const char *src, const char *url, unsigned run,
                        uint64_t max_events) {
    ns_child_guard(parent);
    static sigset_t set; /* SIGTERM is blocked (by the parent, before fork): a thread waits */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_t th;
    if (pthread_create(&th, NULL, relay_child_sigwait, &set)) _exit(2);
    bp_store *s;
    if (t_open_try(&s, src, &(t_open_opts){.open_event = true})) {
        fprintf(stderr, "open %s: %s\n", src, bp_last_error());
        _exit(3);
    }
    bp_relay_config c = relay_cfg(url, KILL_STREAM);
    c.batch = 32; /* acks often: kills land between publishes and acks */
    bp_relay *r;
    if (bp_relay_start(s, &r, &c)) {
        fprintf(stderr, "relay child: bp_relay_start: %s\n", bp_last_error());
        _exit(4);
    }
    gen g;
    char tag[48];
    snprintf(tag, sizeof tag, "k%u-%ld", run, (long)getpid());
    gen_init(&g, 1000 + run, tag, 50, 60);
    uint64_t last = 0, limit = max_events ? max_events : UINT64_MAX;
    while (!relay_child_stop && g.appended < limit) {
        if (gen_step(s, &g, limit, &last)) {
            fprintf(stderr, "relay child: append: %s\n", bp_last_error());
            _exit(5);
        }
        struct timespec ts = {0, 300000};
        nanosleep(&ts, NULL);
    }
    if (max_events && bp_relay_wait(r, published_seq(s), 60000)) {
        fprintf(stderr, "relay child: bp_relay_wait: %s\n", bp_last_error());
        _exit(6);
    }
    bp_status rc = bp_relay_stop(r);
    if (rc) fprintf(stderr, "relay child: bp_relay_stop: %s\n", bp_last_error());
    bp_status rc2 = bp_store_close(s);
    if (rc2) fprintf(stderr, "relay child: close: %s\n", bp_last_error());
    _exit(rc || rc2 ? 7 : 0);
}

static volatile int follow_child_stop;

static void follow_child_on_term(int sig) {
    (void)sig;
    follow_child_stop = 1;
}

/* Follows the stream into the replica until SIGTERM (its handler sets the stop flag). */
static void follow_child(pid_t parent, const char *replica, const char *url) {
    ns_child_guard(parent);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = follow_child_on_term;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    bp_follow_config c = follow_cfg(url, KILL_STREAM);
    c.until_caught_up = false;
    c.stop = &follow_child_stop;
    c.batch = 64;
    c.backoff_max_ms = 200;
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    bp_status rc = bp_follow(&fr, replica, &c);
    if (rc) {
        fprintf(stderr, "follower child: bp_follow: %s: %s\n", bp_strerror(rc), bp_last_error());
        _exit(10);
    }
    _exit(0);
}

static pid_t spawn_relay(const char *src, const char *url, unsigned run, uint64_t max_events) {
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) relay_child(parent, src, url, run, max_events);
    if (pid > 0) kid_add(pid);
    return pid;
}

static pid_t spawn_follow(const char *replica, const char *url) {
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) follow_child(parent, replica, url);
    if (pid > 0) kid_add(pid);
    return pid;
}

static void test_kill9_relay_and_follower(void) {
    const char *dir = t_dir("repl-kill");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir);
    const int want = (int)env_long("BP_REPL_KILLS", 10);
    unsigned seed = (unsigned)env_long("BP_REPL_SEED", 4242);
    srand(seed);
    /* SIGTERM tells the children to stop; blocked until each is ready for it */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);

    /* a first run, not killed, creates the stream */
    unsigned run = 0;
    pid_t rp = spawn_relay(src, ns->url, run++, 500);
    CHECK(rp > 0);
    int st;
    CHECK_EQ(wait_child(rp, 120000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) describe_exit("first relay run", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    rp = spawn_relay(src, ns->url, run++, 0);
    pid_t fp = spawn_follow(replica, ns->url);
    CHECK(rp > 0 && fp > 0);
    int relay_kills = 0, follow_kills = 0;
    long deadline = now_ms() + 120000 + 3000L * want;
    while (relay_kills < want || follow_kills < want) {
        CHECK(now_ms() < deadline);
        ns_sleep_ms(20 + rand() % 280);
        /* a child that ended by itself failed */
        if (waitpid(rp, &st, WNOHANG) == rp) {
            kid_forget(rp);
            describe_exit("relay child", st);
            CHECK(!"the relay child ended by itself");
        }
        if (waitpid(fp, &st, WNOHANG) == fp) {
            kid_forget(fp);
            describe_exit("follower child", st);
            CHECK(!"the follower child ended by itself");
        }
        bool relay = relay_kills < want && (follow_kills >= want || rand() % 2);
        pid_t victim = relay ? rp : fp;
        kill(victim, SIGKILL);
        CHECK_EQ(waitpid(victim, &st, 0), victim);
        kid_forget(victim);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            describe_exit(relay ? "relay child" : "follower child", st);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        if (relay) {
            relay_kills++;
            rp = spawn_relay(src, ns->url, run++, 0);
            CHECK(rp > 0);
        } else {
            follow_kills++;
            fp = spawn_follow(replica, ns->url);
            CHECK(fp > 0);
        }
    }
    /* the last runs are told to stop, and stop cleanly */
    ns_sleep_ms(300);
    kill(rp, SIGTERM);
    kill(fp, SIGTERM);
    CHECK_EQ(wait_child(rp, 60000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) describe_exit("last relay run", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(wait_child(fp, 60000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) describe_exit("last follower run", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sigprocmask(SIG_UNBLOCK, &term, NULL);

    /* the rest: relayed here, followed until caught up */
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    uint64_t last = published_seq(s);
    bp_relay_config rc = relay_cfg(ns->url, KILL_STREAM);
    bp_relay *r;
    CHECK_OK(bp_relay_start(s, &r, &rc));
    bp_status rst = bp_relay_wait(r, last, 120000);
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    bp_relay_stats_get(r, &rs);
    CHECK_OK(bp_relay_stop(r));
    CHECK_OK(rst);
    bp_follow_config fc = follow_cfg(ns->url, KILL_STREAM);
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_OK(bp_follow(&fr, replica, &fc));
    CHECK_EQ(fr.global_seq, last);
    t_membuf want_exp = {0};
    CHECK_OK(export_all(s, &want_exp));
    uint64_t events = event_count(s);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events, last);
    fprintf(stderr,
            "  kill test: %d relay runs SIGKILLed, %d follower runs SIGKILLed, %llu events; "
            "the last relay published %llu (%llu duplicates), the last follow applied %llu, "
            "skipped %llu\n",
            relay_kills, follow_kills, (unsigned long long)last, (unsigned long long)rs.published,
            (unsigned long long)rs.duplicates, (unsigned long long)fr.applied,
            (unsigned long long)fr.skipped);
    CHECK_REPLICA(replica, &want_exp, events); /* nothing lost, nothing twice */
    free(want_exp.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* ------------------------------- (d2) the relay killed with windows in flight */

#define MIDWIN_STREAM "bp_repl-midwin"

/* Owns the source store: a relay with small windows while batches of 64 events are appended
 * as fast as they commit, until it is killed: two windows are in flight most of the time. */
static void midwin_child(pid_t parent, const char *src, const char *url, unsigned run) {
    ns_child_guard(parent);
    bp_store *s;
    if (t_open_try(&s, src, NULL)) {
        fprintf(stderr, "open %s: %s\n", src, bp_last_error());
        _exit(3);
    }
    bp_relay_config c = relay_cfg(url, MIDWIN_STREAM);
    c.batch = 48;
    bp_relay *r;
    if (bp_relay_start(s, &r, &c)) {
        fprintf(stderr, "midwin child: bp_relay_start: %s\n", bp_last_error());
        _exit(4);
    }
    uint8_t payload[PAYLOAD_LEN];
    char ent[32];
    snprintf(ent, sizeof ent, "acct:%u", run);
    bp_batch_item items[64];
    for (uint64_t i = 0;; i++) {
        memset(payload, (int)i, sizeof payload);
        for (int k = 0; k < 64; k++)
            items[k] = (bp_batch_item){ent, "bank", BP_KIND(1, 1), payload, sizeof payload, NULL};
        if (bp_append_batch(s, NULL, items, 64)) {
            fprintf(stderr, "midwin child: append: %s\n", bp_last_error());
            _exit(5);
        }
    }
}

/* The relay's checkpoint in src (0 when there is none). */
static uint64_t relay_ckpt(const char *src, const char *stream) {
    char path[1400];
    snprintf(path, sizeof path, "%s/cursors/relay.%s.ckpt", src, stream);
    uint64_t pos = 0;
    bp_id id;
    bool found = false;
    if (bp_cursorck_load(path, &pos, &id, &found)) return UINT64_MAX;
    return found ? pos : 0;
}

/* kill -9 of the relay's process with windows in flight, again and again: each time, every
 * event up to its checkpoint is in the stream (a follower reaches it without a gap), and at
 * the end the replica holds every event once. */
static void test_kill9_mid_window(void) {
    const char *dir = t_dir("repl-midwin");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir);
    const int kills = (int)env_long("BP_REPL_MIDWIN_KILLS", 6);
    srand((unsigned)env_long("BP_REPL_SEED", 4242));
    bp_store *s0 = t_open(src, NULL); /* made before the first child */
    CHECK(s0 != NULL);
    CHECK_OK(bp_store_close(s0));
    int behind = 0; /* kills that found the checkpoint short of the appended events */
    uint64_t prev_ckpt = 0;
    for (int k = 0; k < kills; k++) {
        fflush(stderr);
        pid_t parent = getpid(), pid = fork();
        if (pid == 0) midwin_child(parent, src, ns->url, (unsigned)k);
        CHECK(pid > 0);
        kid_add(pid);
        ns_sleep_ms(150 + rand() % 350);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            kid_forget(pid);
            describe_exit("midwin child", st);
            CHECK(!"the relay child ended by itself");
        }
        kill(pid, SIGKILL);
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        kid_forget(pid);
        uint64_t ckpt = relay_ckpt(src, MIDWIN_STREAM);
        CHECK(ckpt != UINT64_MAX);
        CHECK(ckpt >= prev_ckpt);
        prev_ckpt = ckpt;
        bp_store *s = t_open(src, &(t_open_opts){.read_only = true, .no_create = true});
        CHECK(s != NULL);
        uint64_t appended = published_seq(s);
        CHECK_OK(bp_store_close(s));
        behind += ckpt < appended;
        /* every event up to the checkpoint is stored: the follower reaches it */
        bp_follow_config fc = follow_cfg(ns->url, MIDWIN_STREAM);
        bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
        if (ckpt) CHECK_OK(bp_follow(&fr, replica, &fc));
        if (ckpt && fr.global_seq < ckpt)
            fprintf(stderr, "  kill %d: checkpoint %llu, the stream holds only up to %llu\n", k,
                    (unsigned long long)ckpt, (unsigned long long)fr.global_seq);
        if (ckpt) CHECK(fr.global_seq >= ckpt);
    }
    /* the rest: relayed here, followed until caught up; nothing lost, nothing twice */
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    uint64_t last = published_seq(s);
    CHECK_OK(relay_all(s, ns->url, MIDWIN_STREAM));
    bp_follow_config fc = follow_cfg(ns->url, MIDWIN_STREAM);
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_OK(bp_follow(&fr, replica, &fc));
    CHECK_EQ(fr.global_seq, last);
    t_membuf want_exp = {0};
    CHECK_OK(export_all(s, &want_exp));
    uint64_t events = event_count(s);
    CHECK_OK(bp_store_close(s));
    fprintf(stderr,
            "  mid-window kills: %d, %d of them with the checkpoint behind the appends; %llu "
            "events\n",
            kills, behind, (unsigned long long)last);
    CHECK(behind > 0); /* the kills did land with events not yet persisted as relayed */
    CHECK_REPLICA(replica, &want_exp, events);
    free(want_exp.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* ------------------------------------------ (e) nats-server restarted mid-stream */

typedef struct follow_thread {
    const char *replica;
    bp_follow_config cfg;
    volatile int stop;
    bp_follow_report report;
    bp_status rc;
    char err[512];
    volatile long done_ms;
} follow_thread;

static void *follow_main(void *arg) {
    follow_thread *t = arg;
    t->cfg.stop = &t->stop;
    t->report = (bp_follow_report)BP_FOLLOW_REPORT_INIT;
    t->rc = bp_follow(&t->report, t->replica, &t->cfg);
    snprintf(t->err, sizeof t->err, "%s", bp_last_error());
    t->done_ms = now_ms();
    return NULL;
}

/* Events in the replica once the follower lets go of it (it closes it when idle);
 * UINT64_MAX on another error than BP_ELOCKED. */
static uint64_t replica_events(const char *dir) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    o.create = false;
    bp_store *s;
    bp_status rc = bp_store_open(&s, dir, &o);
    if (rc == BP_ELOCKED || rc == BP_ENOTFOUND) return 0;
    if (rc) {
        fprintf(stderr, "  open replica: %s\n", bp_last_error());
        return UINT64_MAX;
    }
    uint64_t n = event_count(s);
    bp_store_close(s);
    return n;
}

static void test_server_restart(void) {
    const char *dir = t_dir("repl-restart");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir);
    const uint64_t n = (uint64_t)env_long("BP_REPL_BACKLOG", 50000);
    const int restarts = (int)env_long("BP_REPL_SERVER_RESTARTS", 2);
    const char *stream = "bp_repl-restart";
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    gen g;
    gen_init(&g, 7, "e", 500, 10);
    uint64_t last = 0;
    CHECK_OK(gen_append(s, &g, n, &last));
    CHECK_EQ(last, n);

    bp_relay_config rc = relay_cfg(ns->url, stream);
    bp_relay *r;
    CHECK_OK(bp_relay_start(s, &r, &rc));
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    long deadline = now_ms() + 30000;
    do { /* the stream exists once the first batch is acknowledged */
        ns_sleep_ms(1);
        bp_relay_stats_get(r, &rs);
    } while (rs.position == 0 && rs.running && now_ms() < deadline);
    if (rs.position == 0) bp_relay_stop(r);
    CHECK(rs.position > 0);

    static follow_thread ft;
    memset(&ft, 0, sizeof ft);
    ft.replica = replica;
    ft.cfg = follow_cfg(ns->url, stream);
    ft.cfg.until_caught_up = false;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, follow_main, &ft), 0);

    bool failed = false;
    for (int k = 1; k <= restarts && !failed; k++) {
        uint64_t target = last * (uint64_t)k / (uint64_t)(restarts + 1);
        deadline = now_ms() + 120000;
        do {
            ns_sleep_ms(1);
            bp_relay_stats_get(r, &rs);
        } while (rs.position < target && rs.running && now_ms() < deadline);
        if (rs.position < target || rs.position >= last) {
            fprintf(stderr, "  restart %d: relay at %llu of %llu, wanted %llu..%llu (%s)\n", k,
                    (unsigned long long)rs.position, (unsigned long long)last,
                    (unsigned long long)target, (unsigned long long)last - 1, rs.last_error);
            failed = true;
            break;
        }
        ns_kill9(ns);
        ns_sleep_ms(500);
        if (ns_restart(ns) != 0) failed = true;
        fprintf(stderr, "  nats-server killed (-9) with the relay at %llu of %llu, restarted\n",
                (unsigned long long)rs.position, (unsigned long long)last);
    }
    bp_status wst = failed ? BP_EIO : bp_relay_wait(r, last, 180000);
    bp_relay_stats_get(r, &rs);
    uint64_t got = 0;
    deadline = now_ms() + 180000;
    while (!failed && wst == BP_OK && now_ms() < deadline) {
        got = replica_events(replica);
        if (got >= last) break;
        ns_sleep_ms(200);
    }
    ft.stop = 1;
    pthread_join(th, NULL);
    bp_status sst = bp_relay_stop(r);
    CHECK(!failed);
    CHECK_OK(wst);
    CHECK_OK(sst);
    CHECK_EQ(rs.position, last);
    /* every event acknowledged; one the server stored but whose ack the kill -9 lost counts
     * as a duplicate when published again (so "stored new" may fall short of last; the
     * replica below is what proves nothing was lost) */
    CHECK(rs.published >= last);
    CHECK(rs.published - rs.duplicates <= last);
    CHECK(rs.connected);
    CHECK_EQ(got, last);
    if (ft.rc) fprintf(stderr, "  follower thread: %s\n", ft.err);
    CHECK_OK(ft.rc);
    CHECK_EQ(ft.report.applied, last); /* that one follow call did it all, across restarts */
    fprintf(stderr,
            "  restart test: relay retried %llu batches, %llu duplicates; follower read %llu "
            "messages, skipped %llu\n",
            (unsigned long long)rs.retries, (unsigned long long)rs.duplicates,
            (unsigned long long)ft.report.messages, (unsigned long long)ft.report.skipped);
    t_membuf want = {0};
    CHECK_OK(export_all(s, &want));
    CHECK_OK(bp_store_close(s));
    CHECK_REPLICA(replica, &want, last);
    free(want.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* With the server gone, bp_relay_stop and a follower's stop flag still return in bounded
 * time; the relay's position is kept, and once a server is back a new relay and follower
 * finish the job. */
typedef struct relay_stopper {
    bp_relay *r;
    bp_status rc;
    volatile long done_ms;
} relay_stopper;

static void *relay_stop_main(void *arg) {
    relay_stopper *t = arg;
    t->rc = bp_relay_stop(t->r);
    t->done_ms = now_ms();
    return NULL;
}

/* Join th within timeout_ms; false if it is still running. */
static bool join_within(pthread_t th, long timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

static void test_stop_while_server_away(void) {
    const char *dir = t_dir("repl-away");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], replica[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(replica, sizeof replica, "%s/replica", dir);
    const char *stream = "bp_repl-away";
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    gen g;
    gen_init(&g, 31, "w", 100, 20);
    uint64_t last = 0;
    CHECK_OK(gen_append(s, &g, 20000, &last));
    bp_relay_config rc = relay_cfg(ns->url, stream);
    rc.ack_timeout_ms = 1000;
    rc.batch = 64;
    bp_relay *r;
    CHECK_OK(bp_relay_start(s, &r, &rc));
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    long deadline = now_ms() + 30000;
    do {
        ns_sleep_ms(1);
        bp_relay_stats_get(r, &rs);
    } while (rs.position < 2000 && rs.running && now_ms() < deadline);
    static follow_thread ft;
    memset(&ft, 0, sizeof ft);
    ft.replica = replica;
    ft.cfg = follow_cfg(ns->url, stream);
    ft.cfg.until_caught_up = false;
    pthread_t fth;
    bool follower = rs.position >= 2000 && pthread_create(&fth, NULL, follow_main, &ft) == 0;
    ns_sleep_ms(follower ? 200 : 0);
    ns_kill9(ns); /* and it stays away */
    ns_sleep_ms(300);
    bp_relay_stats_get(r, &rs);
    uint64_t at_kill = rs.position;
    /* both are told to stop while nothing answers */
    static relay_stopper rstop;
    rstop.r = r;
    rstop.rc = BP_OK;
    pthread_t rth;
    long t0 = now_ms();
    bool stopper = pthread_create(&rth, NULL, relay_stop_main, &rstop) == 0;
    ft.stop = 1;
    bool follow_stopped = follower && join_within(fth, 15000);
    bool relay_stopped = stopper && join_within(rth, 15000);
    long follow_ms = follow_stopped ? ft.done_ms - t0 : -1;
    long relay_ms = relay_stopped ? rstop.done_ms - t0 : -1;
    fprintf(stderr,
            "  server away: relay at %llu of %llu; the follower stopped in %ld ms, the relay "
            "in %ld ms (%s)\n",
            (unsigned long long)at_kill, (unsigned long long)last, follow_ms, relay_ms,
            bp_strerror(rstop.rc));
    CHECK(follower);
    CHECK(stopper);
    CHECK(relay_stopped);  /* bp_relay_stop: within ack_timeout_ms and a margin */
    CHECK(follow_stopped); /* the stop flag is seen while the server is away */
    if (ft.rc) fprintf(stderr, "  follower: %s\n", ft.err);
    CHECK(at_kill < last);

    /* the server comes back: a new relay goes on from the kept position */
    CHECK_EQ(ns_restart(ns), 0);
    CHECK_OK(bp_relay_start(s, &r, &rc));
    bp_status wst = bp_relay_wait(r, last, 120000);
    bp_relay_stats_get(r, &rs);
    CHECK_OK(bp_relay_stop(r));
    CHECK_OK(wst);
    CHECK(rs.published <= last - at_kill + rc.batch); /* not from the start again */
    bp_follow_config fc = follow_cfg(ns->url, stream);
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_OK(bp_follow(&fr, replica, &fc));
    t_membuf want = {0};
    CHECK_OK(export_all(s, &want));
    CHECK_OK(bp_store_close(s));
    CHECK_REPLICA(replica, &want, last);
    free(want.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* A relay filtered by kind: bp_relay_wait returns for a seq outside its region once it has
 * passed it. bp_store_close with the relay still running stops it (position persisted) and
 * leaves the handle valid: stats, bp_relay_wait and bp_relay_stop (which frees it) after
 * the close (the ASan build checks the memory). */
static void test_close_with_relay_running(void) {
    const char *dir = t_dir("repl-close");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    for (int i = 0; i < 50; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1 + i % 2), "x", 1));
    bp_receipt last = BP_RECEIPT_INIT; /* the newest event is not of the relay's kind */
    CHECK_OK(bp_append(s, &last, "acct:1", "bank", BP_KIND(1, 2), "y", 1));
    uint16_t kinds[] = {BP_KIND(1, 1)};
    bp_region region = BP_REGION_INIT;
    region.kinds = kinds;
    region.n_kinds = 1;
    bp_relay_config rc = relay_cfg(ns->url, "bp_repl-close");
    rc.region = &region;
    bp_relay *r;
    CHECK_OK(bp_relay_start(s, &r, &rc));
    CHECK_OK(bp_relay_wait(r, last.global_seq, 60000));
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    bp_relay_stats_get(r, &rs);
    CHECK_EQ(rs.published, 25);
    CHECK_EQ(rs.lag_events, 0);
    CHECK_OK(bp_store_close(s)); /* the relay still runs */
    bp_relay_stats_get(r, &rs);
    CHECK(!rs.running);
    CHECK_EQ(rs.position, last.global_seq - 2);
    CHECK_FAILS(bp_relay_wait(r, last.global_seq + 1, 1000), BP_EIO, "relay stopped");
    CHECK_OK(bp_relay_stop(r));
    s = t_open(src, NULL); /* the close persisted its position */
    CHECK(s != NULL);
    bp_checkpoint_info ci = BP_CHECKPOINT_INFO_INIT;
    size_t n;
    CHECK_OK(bp_checkpoints_list(s, &ci, 1, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(ci.position, last.global_seq - 2);
    CHECK_OK(bp_store_close(s));
    ns_stop(ns);
    t_rmdir(dir);
}

/* ---------------------------------------------- (f) tampered and foreign messages */

#ifdef BP_HAVE_NATS
/* Publish a copy of msg (read from a stream whose subjects start with from_prefix) to
 * to_prefix + the same suffix, with its headers (but the ones the server adds), its body
 * with the byte at flip (if >= 0) changed. */
static bool publish_copy(jsCtx *js, natsMsg *msg, const char *from_prefix, const char *to_prefix,
                         long flip, const char *msg_id) {
    const char *subj = natsMsg_GetSubject(msg);
    if (strncmp(subj, from_prefix, strlen(from_prefix)) != 0) {
        fprintf(stderr, "  unexpected subject %s (wanted %s...)\n", subj, from_prefix);
        return false;
    }
    char to[256];
    snprintf(to, sizeof to, "%s%s", to_prefix, subj + strlen(from_prefix));
    int len = natsMsg_GetDataLength(msg);
    char *body = malloc((size_t)len + 1);
    if (!body) return false;
    memcpy(body, natsMsg_GetData(msg), (size_t)len);
    if (flip >= 0 && flip < len) body[flip] ^= 0x01;
    natsMsg *out = NULL;
    bool ok = natsMsg_Create(&out, to, NULL, body, len) == NATS_OK;
    const char **keys = NULL;
    int nkeys = 0;
    if (ok && natsMsgHeader_Keys(msg, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; ok && i < nkeys; i++) {
            if (strncmp(keys[i], "Nats-", 5) == 0 && strcmp(keys[i], "Nats-Msg-Id") != 0) continue;
            const char **vals = NULL;
            int nvals = 0;
            if (natsMsgHeader_Values(msg, keys[i], &vals, &nvals) != NATS_OK) {
                ok = false;
                break;
            }
            for (int j = 0; ok && j < nvals; j++)
                ok = natsMsgHeader_Add(out, keys[i], vals[j]) == NATS_OK;
            if (ok && msg_id && strcmp(keys[i], "Nats-Msg-Id") == 0)
                ok = natsMsgHeader_Set(out, keys[i], msg_id) == NATS_OK;
            free((void *)vals);
        }
        free((void *)keys);
    }
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (ok && js_PublishMsg(&pa, js, out, NULL, &jerr) != NATS_OK) {
        fprintf(stderr, "  publish to %s: %s (%d)\n", to, nats_GetLastError(NULL), (int)jerr);
        ok = false;
    }
    if (ok && pa->Duplicate) {
        fprintf(stderr, "  publish to %s: dropped as a duplicate\n", to);
        ok = false;
    }
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(out);
    free(body);
    return ok;
}

/* The last error names the number seq (as a whole number, outside the replica's path). */
static bool error_names(const char *replica, uint64_t seq) {
    char msg[1024], num[24];
    snprintf(msg, sizeof msg, "%s", bp_last_error());
    snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    size_t dl = strlen(replica);
    for (char *p; (p = strstr(msg, replica)) != NULL;)
        memset(p, '_', dl);
    for (const char *p = msg; (p = strstr(p, num)) != NULL; p++) {
        bool before = p > msg && p[-1] >= '0' && p[-1] <= '9';
        char after = p[strlen(num)];
        if (!before && !(after >= '0' && after <= '9')) return true;
    }
    fprintf(stderr, "  the error does not name %s: %s\n", num, bp_last_error());
    return false;
}

static natsMsg *get_msg(jsCtx *js, const char *stream, uint64_t seq) {
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (js_GetMsg(&m, js, stream, seq, NULL, &jerr) != NATS_OK) {
        fprintf(stderr, "  get %s #%llu: %s (%d)\n", stream, (unsigned long long)seq,
                nats_GetLastError(NULL), (int)jerr);
        return NULL;
    }
    return m;
}

/* A stream NAME with the subjects batpak.NAME.>, as a relay makes it. */
static bool add_stream(jsCtx *js, const char *name) {
    char subject[128];
    snprintf(subject, sizeof subject, "batpak.%s.>", name);
    const char *subjects[] = {subject};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_AddStream(&si, js, &sc, NULL, &jerr) != NATS_OK) {
        fprintf(stderr, "  add stream %s: %s (%d)\n", name, nats_GetLastError(NULL), (int)jerr);
        return false;
    }
    jsStreamInfo_Destroy(si);
    return true;
}

/* Stream "shuffled": the messages of stream "full" (1..n) out of order, as a relay that
 * publishes a batch again can leave them (two neighbours swapped, three rotated, one 200
 * places late, the two events of a batch swapped when there is one), then two of them again
 * under new message ids, as after the duplicate window. */
static bool build_shuffled(jsCtx *js, uint64_t n, uint64_t batch_first) {
    if (!add_stream(js, "shuffled")) return false;
    uint64_t *order = malloc(n * sizeof *order);
    if (!order) return false;
    for (uint64_t i = 0; i < n; i++)
        order[i] = i + 1;
    uint64_t t = order[9]; /* 10 and 11 swapped */
    order[9] = order[10];
    order[10] = t;
    t = order[99]; /* 100, 101, 102 -> 102, 100, 101 */
    order[99] = order[101];
    order[101] = order[100];
    order[100] = t;
    t = order[49]; /* 50 comes after 250 */
    memmove(&order[49], &order[50], 200 * sizeof *order);
    order[249] = t;
    if (batch_first > 251 && batch_first < n) { /* a batch's first two events swapped */
        t = order[batch_first - 1];
        order[batch_first - 1] = order[batch_first];
        order[batch_first] = t;
    }
    bool ok = true;
    for (uint64_t i = 0; ok && i < n + 2; i++) {
        uint64_t seq = i < n ? order[i] : i == n ? 7 : n;
        natsMsg *m = get_msg(js, "full", seq);
        char id[32];
        snprintf(id, sizeof id, "again-%llu", (unsigned long long)seq);
        ok = m && publish_copy(js, m, "batpak.full.", "batpak.shuffled.", -1, i < n ? NULL : id);
        natsMsg_Destroy(m);
    }
    free(order);
    return ok;
}

/* msg is the message doc/FORMAT.md "Replication" describes for the event of receipt rec
 * (entity and scope: their header form). */
static bool message_format_ok(natsMsg *msg, const bp_receipt *rec, const char *entity,
                              const char *scope) {
    char subject[64], id[37], hash[65], store[37], seq[24], clock[24], kind[8];
    snprintf(subject, sizeof subject, "batpak.full.%04x", rec->kind);
    bp_id_format(&rec->event_id, id);
    bp_hash_format(&rec->event_hash, hash);
    bp_id sid;
    memcpy(sid.b, rec->store_id, 16);
    bp_id_format(&sid, store);
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)rec->global_seq);
    snprintf(clock, sizeof clock, "%llu", (unsigned long long)rec->clock);
    snprintf(kind, sizeof kind, "0x%04x", rec->kind);
    const char *want[][2] = {
        {"Nats-Msg-Id", id},       {"Batpak-Store", store}, {"Batpak-Event-Id", id},
        {"Batpak-Entity", entity}, {"Batpak-Scope", scope}, {"Batpak-Kind", kind},
        {"Batpak-Seq", seq},       {"Batpak-Clock", clock}, {"Batpak-Hash", hash}};
    bool ok = strcmp(natsMsg_GetSubject(msg), subject) == 0;
    if (!ok) fprintf(stderr, "  subject %s, want %s\n", natsMsg_GetSubject(msg), subject);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *v = NULL;
        if (natsMsgHeader_Get(msg, want[i][0], &v) != NATS_OK || !v || strcmp(v, want[i][1])) {
            fprintf(stderr, "  header %s: %s, want %s\n", want[i][0], v ? v : "(none)", want[i][1]);
            ok = false;
        }
    }
    return ok;
}

/* The first global_seq after `after` that starts a batch (0: none). */
static uint64_t batch_after(bp_store *s, uint64_t after) {
    bp_region rg = BP_REGION_INIT;
    rg.from_seq = after + 1;
    bp_iter *it;
    const bp_event *ev;
    uint64_t found = 0;
    if (bp_query(s, &it, &rg, BP_READ_FULL)) return 0;
    while (!found && bp_iter_next(it, &ev) == BP_OK)
        if (ev->batch_count >= 2 && ev->batch_index == 0) found = ev->global_seq;
    bp_iter_free(it);
    return found;
}

static void test_tampered_message(void) {
    const char *dir = t_dir("repl-tamper");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], foreign[1200], foreign2[1200], r_control[1200], r_tamper[1200], r_foreign[1200],
        r_foreign2[1200], r_shuffled[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(foreign, sizeof foreign, "%s/foreign-src", dir);
    snprintf(r_control, sizeof r_control, "%s/r-control", dir);
    snprintf(r_tamper, sizeof r_tamper, "%s/r-tamper", dir);
    snprintf(r_foreign, sizeof r_foreign, "%s/r-foreign", dir);
    snprintf(foreign2, sizeof foreign2, "%s/foreign-src2", dir);
    snprintf(r_foreign2, sizeof r_foreign2, "%s/r-foreign2", dir);
    snprintf(r_shuffled, sizeof r_shuffled, "%s/r-shuffled", dir);
    enum { N = 313 }; /* the bad message is stream sequence 314 */

    /* the source's first N events go to three streams */
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    gen g;
    gen_init(&g, 11, "f", 10, 40);
    uint64_t last = 0;
    CHECK_OK(gen_append(s, &g, N, &last));
    CHECK_EQ(last, N);
    CHECK_OK(relay_all(s, ns->url, "control"));
    CHECK_OK(relay_all(s, ns->url, "tamper"));
    CHECK_OK(relay_all(s, ns->url, "foreign"));
    CHECK_OK(relay_all(s, ns->url, "foreign2"));
    uint64_t batch_first = batch_after(s, 252);
    CHECK(batch_first > 252 && batch_first < N); /* the generator made one there */
    t_membuf want_n = {0}, want_n1 = {0};
    CHECK_OK(export_all(s, &want_n));
    /* event N+1, with a payload we can find in the message, goes to a fourth */
    uint8_t payload[PAYLOAD_LEN];
    for (int i = 0; i < PAYLOAD_LEN; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    bp_receipt rec = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &rec, "acct: \xc3\xbc%1", "bank ops", BP_KIND(1, 0xAB), payload,
                       sizeof payload));
    CHECK_OK(relay_all(s, ns->url, "full"));
    CHECK_OK(export_all(s, &want_n1));
    CHECK_OK(bp_store_close(s));
    /* other stores, the same entities: their event N+1 goes to other streams; in the first
     * a single event, in the second the last of a batch */
    bp_store *f = t_open(foreign, NULL);
    CHECK(f != NULL);
    gen_init(&g, 12, "f2", 10, 40);
    CHECK_OK(gen_append(f, &g, N, &last));
    CHECK_OK(bp_append(f, NULL, "acct:1", "bank", BP_KIND(1, 2), payload, sizeof payload));
    CHECK_OK(relay_all(f, ns->url, "other"));
    CHECK_OK(bp_store_close(f));
    f = t_open(foreign2, NULL);
    CHECK(f != NULL);
    gen_init(&g, 13, "f3", 10, 40);
    CHECK_OK(gen_append(f, &g, N - 2, &last));
    bp_batch_item items[3];
    for (int i = 0; i < 3; i++)
        items[i] = (bp_batch_item){"acct:1", "bank", BP_KIND(1, 3), payload, sizeof payload, NULL};
    CHECK_OK(bp_append_batch(f, NULL, items, 3));
    CHECK_EQ(published_seq(f), N + 1);
    CHECK_OK(relay_all(f, ns->url, "other2"));
    CHECK_OK(bp_store_close(f));

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CHECK(natsConnection_ConnectTo(&nc, ns->url) == NATS_OK);
    bool ok = natsConnection_JetStream(&js, nc, NULL) == NATS_OK;
    natsMsg *m = ok ? get_msg(js, "full", N + 1) : NULL;
    natsMsg *o = ok ? get_msg(js, "other", N + 1) : NULL;
    natsMsg *o2 = ok ? get_msg(js, "other2", N + 1) : NULL;
    bool format = m && message_format_ok(m, &rec, "acct:%20%C3%BC%251", "bank%20ops");
    long at = -1;
    if (m) {
        const char *body = natsMsg_GetData(m);
        const char *p = memmem(body, (size_t)natsMsg_GetDataLength(m), payload, sizeof payload);
        if (p) at = (long)(p - body) + PAYLOAD_LEN / 2;
    }
    bool copied = m && o && o2 && at >= 0 &&
                  publish_copy(js, m, "batpak.full.", "batpak.control.", -1, NULL) &&
                  publish_copy(js, m, "batpak.full.", "batpak.tamper.", at, NULL) &&
                  publish_copy(js, o, "batpak.other.", "batpak.foreign.", -1, NULL) &&
                  publish_copy(js, o2, "batpak.other2.", "batpak.foreign2.", -1, NULL);
    natsMsg_Destroy(m);
    natsMsg_Destroy(o);
    natsMsg_Destroy(o2);
    bool shuffled = copied && build_shuffled(js, N + 1, batch_first);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    CHECK(ok);
    CHECK(format);
    CHECK(at >= 0); /* the payload is in the body as written */
    CHECK(copied);
    CHECK(shuffled);

    /* the untouched copy is applied: the copying itself is faithful */
    bp_follow_config fc = follow_cfg(ns->url, "control");
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_OK(bp_follow(&fr, r_control, &fc));
    CHECK_EQ(fr.applied, N + 1);
    CHECK_REPLICA(r_control, &want_n1, N + 1);

    /* out of order and twice: applied in order, each once */
    fc.stream = "shuffled";
    CHECK_OK(bp_follow(&fr, r_shuffled, &fc));
    CHECK_EQ(fr.messages, N + 3);
    CHECK_EQ(fr.applied, N + 1);
    CHECK_EQ(fr.skipped, 2);
    CHECK_REPLICA(r_shuffled, &want_n1, N + 1);

    /* one byte flipped: refused, naming the stream sequence; the replica holds 1..N */
    fc.stream = "tamper";
    for (int pass = 0; pass < 2; pass++) { /* and again: it stays refused */
        fr = (bp_follow_report)BP_FOLLOW_REPORT_INIT;
        CHECK_EQ(bp_follow(&fr, r_tamper, &fc), BP_ECORRUPT);
        CHECK(error_names(r_tamper, N + 1));
        CHECK_EQ(fr.applied, pass ? 0 : N);
        CHECK_EQ(fr.global_seq, N);
        CHECK_REPLICA(r_tamper, &want_n, N);
    }

    /* a valid event of another store (a single one, then one of a batch): it does not
     * follow this chain */
    for (int k = 0; k < 2; k++) {
        const char *r_dir = k ? r_foreign2 : r_foreign;
        fc.stream = k ? "foreign2" : "foreign";
        fr = (bp_follow_report)BP_FOLLOW_REPORT_INIT;
        bp_status rc = bp_follow(&fr, r_dir, &fc);
        if (rc != BP_ECORRUPT && rc != BP_ECONFLICT) {
            fprintf(stderr, "  stream %s: want BP_ECORRUPT or BP_ECONFLICT\n", fc.stream);
            CHECK_EQ(rc, BP_ECORRUPT);
        }
        CHECK(error_names(r_dir, N + 1));
        CHECK_EQ(fr.applied, N);
        CHECK_REPLICA(r_dir, &want_n, N);
    }
    free(want_n.p);
    free(want_n1.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* A stream with a hole (event 101 missing, as when a relay's resend comes late): the follower
 * applies what it can, stops at the gap with BP_ECORRUPT, and its checkpoint must stay before
 * the hole, so that once the late event arrives a second follow re-reads the events after it
 * and the replica ends complete. */
static void test_gap_then_late(void) {
    const char *dir = t_dir("repl-gap");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], rep[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(rep, sizeof rep, "%s/rep", dir);
    enum { N = 300, HOLE = 101 };
    bp_store *s = t_open(src, NULL);
    CHECK(s != NULL);
    uint8_t payload[PAYLOAD_LEN] = {0x90}; /* msgpack [] and padding */
    for (int i = 0; i < N; i++) {          /* single events: no batch spans the hole */
        char ent[32];
        snprintf(ent, sizeof ent, "acct:%d", i % 7);
        CHECK_OK(bp_append_ex(s, NULL, ent, "bank", BP_KIND(1, 1), payload, 1, NULL));
    }
    CHECK_OK(relay_all(s, ns->url, "full"));
    t_membuf want = {0};
    CHECK_OK(export_all(s, &want));
    CHECK_OK(bp_store_close(s));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CHECK(natsConnection_ConnectTo(&nc, ns->url) == NATS_OK);
    CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    CHECK(add_stream(js, "late"));
    bool ok = true;
    for (uint64_t q = 1; ok && q <= N; q++) {
        if (q == HOLE) continue;
        natsMsg *m = get_msg(js, "full", q);
        ok = m && publish_copy(js, m, "batpak.full.", "batpak.late.", -1, NULL);
        natsMsg_Destroy(m);
    }
    CHECK(ok);
    bp_follow_config fc = follow_cfg(ns->url, "late");
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_FAILS(bp_follow(&fr, rep, &fc), BP_ECORRUPT, "gap");
    CHECK_EQ(fr.stream_seq, HOLE - 1);      /* the checkpoint stays before the hole */
    natsMsg *m = get_msg(js, "full", HOLE); /* the late event arrives */
    CHECK(m && publish_copy(js, m, "batpak.full.", "batpak.late.", -1, NULL));
    natsMsg_Destroy(m);
    CHECK_OK(bp_follow(&fr, rep, &fc));
    CHECK_REPLICA(rep, &want, N);
    free(want.p);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* ------------------------------------------------- (h) a compacted source */

static bp_status compact_keep(bp_store *s, uint64_t keep) {
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = keep;
    return bp_compact(s, NULL, &o);
}

/* A source compacted before its relay starts: the relay publishes its anchors first and a new
 * follower builds an exact replica. Compacted again after a follower caught up: the follower
 * keeps the events it holds and goes on; a new follower of the whole stream too. A damaged
 * anchors message stops a follower, naming it. */
static void test_compacted_source(void) {
    const char *dir = t_dir("repl-compacted");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char src[1200], r1[1200], r2[1200], r3[1200];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(r1, sizeof r1, "%s/r1", dir);
    snprintf(r2, sizeof r2, "%s/r2", dir);
    snprintf(r3, sizeof r3, "%s/r3", dir);
    bp_store *s = t_open(src, &(t_open_opts){.open_event = true});
    CHECK(s != NULL);
    gen g;
    gen_init(&g, 31, "cmp", 20, 30);
    uint64_t last = 0;
    CHECK_OK(gen_append(s, &g, 3000, &last));
    CHECK_OK(compact_keep(s, 40)); /* holes from seq 1 and between kept events */
    CHECK_OK(gen_append(s, &g, 200, &last));
    uint64_t n1 = event_count(s);
    CHECK(n1 < last);
    t_membuf want = {0};
    CHECK_OK(export_all(s, &want));
    CHECK(!strncmp(want.p, "{\"format\":\"batpak-anchors-v1\",", 30));

    /* relay from the start, then a new follower */
    CHECK_OK(relay_all(s, ns->url, "cmp"));
    bp_follow_config fc = follow_cfg(ns->url, "cmp");
    bp_follow_report fr = BP_FOLLOW_REPORT_INIT;
    CHECK_OK(bp_follow(&fr, r1, &fc));
    CHECK_EQ(fr.applied, n1);
    CHECK_EQ(fr.messages, n1 + 1); /* the anchors message first */
    CHECK_EQ(fr.global_seq, last);
    CHECK_REPLICA(r1, &want, n1);

    /* the message: subject P.anchors, its range in a header, the export's anchors record */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CHECK(natsConnection_ConnectTo(&nc, ns->url) == NATS_OK);
    CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    natsMsg *m = get_msg(js, "cmp", 1);
    CHECK(m != NULL);
    if (m) {
        const char *upto = NULL;
        CHECK(!strcmp(natsMsg_GetSubject(m), "batpak.cmp.anchors"));
        CHECK(natsMsgHeader_Get(m, "Batpak-Anchors", &upto) == NATS_OK && upto);
        char want_upto[32];
        snprintf(want_upto, sizeof want_upto, "\"upto\":%s,", upto ? upto : "?");
        const char *nl = strchr(want.p, '\n');
        CHECK(natsMsg_GetDataLength(m) == nl - want.p &&
              !memcmp(natsMsg_GetData(m), want.p, (size_t)(nl - want.p)));
        CHECK(memmem(want.p, (size_t)(nl - want.p), want_upto, strlen(want_upto)) != NULL);
        natsMsg_Destroy(m);
    }

    /* compacted again after r1 caught up: r1 keeps what it holds and takes the new events */
    uint64_t before = published_seq(s);
    CHECK_OK(compact_keep(s, 5));
    uint64_t last2 = 0;
    CHECK_OK(gen_append(s, &g, 100, &last2));
    CHECK_OK(relay_all(s, ns->url, "cmp"));
    t_membuf tail = {0};
    bp_export_options eo = BP_EXPORT_OPTIONS_INIT;
    eo.after_seq = before;
    CHECK_OK(bp_export(s, t_to_mem, &tail, &eo));
    CHECK(tail.p && !strncmp(tail.p, "{\"global_seq\":", 14)); /* no anchors record */
    t_membuf want2 = {0};
    CHECK_OK(t_to_mem(&want2, want.p, want.n));
    CHECK_OK(t_to_mem(&want2, tail.p, tail.n));
    CHECK_OK(bp_follow(&fr, r1, &fc));
    CHECK_EQ(fr.applied, 100);
    CHECK_REPLICA(r1, &want2, n1 + 100);
    /* a new follower of the whole stream: the same */
    CHECK_OK(bp_follow(&fr, r2, &fc));
    CHECK_REPLICA(r2, &want2, n1 + 100);
    /* a new stream relayed after the second compaction: an exact replica of the source */
    bp_relay_config rc = relay_cfg(ns->url, "cmp2");
    bp_relay *r;
    CHECK_OK(bp_relay_start(s, &r, &rc));
    CHECK_OK(bp_relay_wait(r, published_seq(s), 60000));
    CHECK_OK(bp_relay_stop(r));
    t_membuf want3 = {0};
    CHECK_OK(export_all(s, &want3));
    fc.stream = "cmp2";
    CHECK_OK(bp_follow(&fr, r3, &fc));
    CHECK_REPLICA(r3, &want3, event_count(s));

    /* a damaged anchors message, first in a stream: the follower stops there */
    CHECK(add_stream(js, "badanchors"));
    natsMsg *bad = NULL;
    CHECK(natsMsg_Create(&bad, "batpak.badanchors.anchors", NULL, "{\"format\":1}", 12) == NATS_OK);
    CHECK(natsMsgHeader_Set(bad, "Batpak-Anchors", "9") == NATS_OK);
    jsErrCode jerr = 0;
    CHECK(js_PublishMsg(NULL, js, bad, NULL, &jerr) == NATS_OK);
    natsMsg_Destroy(bad);
    char r4[1200];
    snprintf(r4, sizeof r4, "%s/r4", dir);
    fc.stream = "badanchors";
    CHECK_FAILS(bp_follow(&fr, r4, &fc), BP_ECORRUPT, "stream sequence 1: anchors record");
    CHECK_OK(bp_store_close(s));
    free(want.p);
    free(want2.p);
    free(want3.p);
    free(tail.p);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ns_stop(ns);
    t_rmdir(dir);
}
#endif

/* --------------------------------------------- (g) a replica of something else */

static void test_not_a_replica(void) {
    const char *dir = t_dir("repl-conflict");
    ns_server *ns = ns_start(dir);
    CHECK(ns != NULL);
    char a[1200], b[1200], r1[1200], r2[1200];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(r1, sizeof r1, "%s/r1", dir);
    snprintf(r2, sizeof r2, "%s/r2", dir);
    uint64_t last;
    gen g;
    bp_store *s = t_open(a, NULL);
    CHECK(s != NULL);
    gen_init(&g, 21, "a", 20, 50);
    CHECK_OK(gen_append(s, &g, 200, &last));
    CHECK_OK(relay_all(s, ns->url, "mine"));
    t_membuf want_a = {0}, want_r1 = {0};
    CHECK_OK(export_all(s, &want_a));
    CHECK_OK(bp_store_close(s));
    s = t_open(b, NULL);
    CHECK(s != NULL);
    gen_init(&g, 22, "b", 20, 50);
    CHECK_OK(gen_append(s, &g, 200, &last));
    CHECK_OK(relay_all(s, ns->url, "theirs"));
    CHECK_OK(bp_store_close(s));

    /* a store with events of its own */
    s = t_open(r1, NULL);
    CHECK(s != NULL);
    gen_init(&g, 23, "r", 5, 0);
    CHECK_OK(gen_append(s, &g, 5, &last));
    CHECK_OK(export_all(s, &want_r1));
    CHECK_OK(bp_store_close(s));
    bp_follow_config fc = follow_cfg(ns->url, "mine");
    CHECK_EQ(bp_follow(NULL, r1, &fc), BP_ECONFLICT);
    CHECK_REPLICA(r1, &want_r1, 5); /* untouched */

    /* a replica of another stream */
    CHECK_OK(bp_follow(NULL, r2, &fc));
    CHECK_REPLICA(r2, &want_a, 200);
    fc.stream = "theirs";
    CHECK_EQ(bp_follow(NULL, r2, &fc), BP_ECONFLICT);
    CHECK_REPLICA(r2, &want_a, 200);
    fc.stream = "mine"; /* its own stream still follows */
    CHECK_OK(bp_follow(NULL, r2, &fc));
    free(want_a.p);
    free(want_r1.p);
    ns_stop(ns);
    t_rmdir(dir);
}

/* ------------------------------------------------------------------- main */

/* Run fn in a child process of its own (see the file comment); add up its checks. */
static void run_isolated(const char *name, void (*fn)(void)) {
    const char *only = getenv("BP_REPL_ONLY");
    if (only && *only && !strstr(name, only)) return;
    int pfd[2];
    if (pipe(pfd) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    long t0 = now_ms();
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(99);
        t_checks = t_failures = 0;
        fn();
        kill_kids();
        ns_kill_all();
        int counts[2] = {t_checks, t_failures};
        if (write(pfd[1], counts, sizeof counts) != (ssize_t)sizeof counts) _exit(98);
        close(pfd[1]);
        exit(0); /* exit, not _exit: the sanitizers' exit checks run */
    }
    close(pfd[1]);
    int counts[2] = {0, 0};
    ssize_t got = read(pfd[0], counts, sizeof counts);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    t_checks += counts[0];
    t_failures += counts[1];
    bool died = got != (ssize_t)sizeof counts || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (died) {
        describe_exit(name, st);
        t_failures++;
    }
    fprintf(stderr, "%s %s (%.1f s)\n", counts[1] || died ? "FAIL" : "ok  ", name,
            (double)(now_ms() - t0) / 1000.0);
}

int main(void) {
    if (!bp_replication_available()) {
        RUN(test_not_built);
        if (t_failures) T_DONE();
        printf("SKIP: this libbatpak is built without NATS JetStream replication (libnats-dev; "
               "scripts/install-deps.sh installs it)\n");
        return 77;
    }
    ns_require();
    fprintf(stderr, "nats-server: %s\n", ns_find_bin());
    run_isolated("test_bad_input", test_bad_input);
    run_isolated("test_relay_follow_100k", test_relay_follow_100k);
    run_isolated("test_kill9_relay_and_follower", test_kill9_relay_and_follower);
    run_isolated("test_kill9_mid_window", test_kill9_mid_window);
    run_isolated("test_server_restart", test_server_restart);
    run_isolated("test_stop_while_server_away", test_stop_while_server_away);
    run_isolated("test_close_with_relay_running", test_close_with_relay_running);
#ifdef BP_HAVE_NATS
    run_isolated("test_tampered_message", test_tampered_message);
    run_isolated("test_gap_then_late", test_gap_then_late);
    run_isolated("test_compacted_source", test_compacted_source);
#else
    fprintf(stderr, "test_tampered_message: skipped (no <nats/nats.h> in this build)\n");
#endif
    run_isolated("test_not_a_replica", test_not_a_replica);
    T_DONE();
}
