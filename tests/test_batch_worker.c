/* The pipelined batch worker (deliver_impl.h, the relay's engine) against a model of a server
 * that acknowledges a batch one call later: the position and the checkpoint move past a batch
 * only after a call vouched for it, the mark (passed) never runs ahead of that either, and a
 * failed call hands everything after the position over again, in order. */
#include "t.h"
#include "deliver/deliver_impl.h"

#include <pthread.h>
#include <time.h>

#define N_EVENTS 1000
#define BATCH 50
#define CKPT_EVERY 200

/* The model: what the handler has been given and vouched for. */
typedef struct model {
    bp_worker *w;          /* atomic: set once bp_worker_start_batch returned */
    const char *ckpt_path; /* DIR/cursors/ID.ckpt */
    uint64_t handed;       /* last seq handed over (0: none) */
    uint64_t fly_last;     /* last seq of the batch in flight (0: none) */
    uint64_t vouched;      /* every seq <= vouched was vouched for by a call that returned OK */
    unsigned calls, fails; /* calls so far; failures injected */
    unsigned fail_at[2];   /* call numbers that fail */
    bool flush_failed;     /* the first flush (n == 0) fails */
    unsigned violations;   /* invariant breaks seen by the handler */
    char why[256];         /* the first one */
} model;

static void violation(model *m, const char *what, uint64_t got, uint64_t want) {
    if (!m->violations++)
        snprintf(m->why, sizeof m->why, "call %u: %s: %llu, expected %llu", m->calls, what,
                 (unsigned long long)got, (unsigned long long)want);
}

static bp_status handler(void *ctx, const bp_event **evs, size_t n, uint32_t attempt) {
    model *m = ctx;
    (void)attempt;
    bp_worker *w;
    while (!(w = __atomic_load_n(&m->w, __ATOMIC_ACQUIRE))) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    m->calls++;
    /* what the worker shows now: nothing beyond what the model vouched for */
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    if (st.position != m->vouched) violation(m, "position", st.position, m->vouched);
    if (st.passed > m->vouched) violation(m, "passed", st.passed, m->vouched);
    uint64_t ck = 0;
    bp_id id;
    bool found = false;
    if (bp_cursorck_load(m->ckpt_path, &ck, &id, &found) == BP_OK && ck > m->vouched)
        violation(m, "checkpoint", ck, m->vouched);
    /* the events handed over follow the last ones (after a failure: the position) */
    for (size_t i = 0; i < n; i++)
        if (evs[i]->global_seq != m->handed + 1 + i)
            violation(m, "handed seq", evs[i]->global_seq, m->handed + 1 + i);
    bool fail = m->calls == m->fail_at[0] || m->calls == m->fail_at[1];
    if (!n && !m->flush_failed) fail = m->flush_failed = true;
    if (fail) { /* everything in flight is forgotten: it comes again after the position */
        m->fails++;
        m->handed = m->vouched;
        m->fly_last = 0;
        return bp_err(BP_EIO, "injected failure at call %u", m->calls);
    }
    if (m->fly_last) m->vouched = m->fly_last; /* the batch before is acknowledged now */
    if (n) {
        m->handed = evs[n - 1]->global_seq;
        m->fly_last = m->handed;
    } else {
        m->fly_last = 0; /* a flush: all acknowledged */
    }
    return BP_OK;
}

static void test_pipelined_batches(void) {
    const char *dir = t_dir("batch-worker");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &o));
    for (uint32_t i = 0; i < N_EVENTS; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), &i, sizeof i));
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/cursors/pipe.ckpt", dir);
    /* calls 3 and 8 fail with a batch in flight, and so does the first flush */
    model m = {.ckpt_path = ckpt, .fail_at = {3, 8}};
    bp_worker_config wc = BP_WORKER_CONFIG_INIT;
    wc.checkpoint_id = "pipe";
    wc.batch = BATCH;
    wc.checkpoint_every = CKPT_EVERY;
    wc.backoff_ms = 1;
    wc.backoff_max_ms = 2;
    bp_region all = BP_REGION_INIT;
    bp_worker *w;
    CHECK_OK(bp_worker_start_batch(s, &all, handler, &m, NULL, &wc, &w));
    __atomic_store_n(&m.w, w, __ATOMIC_RELEASE);
    CHECK_OK(bp_worker_wait(w, N_EVENTS, 60000));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_OK(bp_worker_stop(w));
    if (m.violations) fprintf(stderr, "  %u violations; first: %s\n", m.violations, m.why);
    CHECK_EQ(m.violations, 0);
    CHECK_EQ(m.fails, 3);
    CHECK_EQ(st.retries, 3);
    CHECK_EQ(st.position, N_EVENTS);
    CHECK_EQ(m.vouched, N_EVENTS);
    /* caught up: the checkpoint is written whatever checkpoint_every says */
    uint64_t ck = 0;
    bp_id id;
    bool found = false;
    CHECK_OK(bp_cursorck_load(ckpt, &ck, &id, &found));
    CHECK(found);
    CHECK_EQ(ck, N_EVENTS);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A handler that never vouches for anything (its server never answers): the position and
 * the checkpoint stay where they were, however many batches it is handed. */
static unsigned never_calls;
static bp_status never_acked(void *ctx, const bp_event **evs, size_t n, uint32_t attempt) {
    (void)ctx;
    (void)evs;
    (void)n;
    (void)attempt;
    never_calls++;
    return bp_err(BP_EIO, "no acks");
}

static void test_no_ack_no_move(void) {
    const char *dir = t_dir("batch-worker-noack");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &o));
    for (uint32_t i = 0; i < 100; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), &i, sizeof i));
    bp_worker_config wc = BP_WORKER_CONFIG_INIT;
    wc.checkpoint_id = "never";
    wc.batch = 10;
    wc.backoff_ms = 1;
    wc.backoff_max_ms = 2;
    bp_region all = BP_REGION_INIT;
    bp_worker *w;
    CHECK_OK(bp_worker_start_batch(s, &all, never_acked, NULL, NULL, &wc, &w));
    CHECK_FAILS(bp_worker_wait(w, 1, 300), BP_ETIMEDOUT, "");
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_OK(bp_worker_stop(w));
    CHECK(never_calls >= 2);
    CHECK_EQ(st.position, 0);
    CHECK_EQ(st.passed, 0);
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/cursors/never.ckpt", dir);
    uint64_t ck = 0;
    bp_id id;
    bool found = true;
    CHECK_OK(bp_cursorck_load(ckpt, &ck, &id, &found));
    CHECK(!found || ck == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_pipelined_batches);
    RUN(test_no_ack_no_move);
    T_DONE();
}
