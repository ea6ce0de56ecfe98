/* Optimistic concurrency (store.h, "Optimistic concurrency"; GUIDE, "Optimistic concurrency:
 * the retry loop"): the head writers read includes every append already written (a head read
 * waits for one still waiting for its group commit's sync), so a CAS append conflicts only
 * when another append was written after the head was read; writers that lost a race on an
 * entity get the next turns on it, so no append needs more retries than there are other
 * writers on the entity. Every count here is a count, not a timing. */
#include "t.h"
#include "bp_testing.h"
#include "platform/platform.h"
#include "store/store_impl.h"

#include <pthread.h>
#include <stdatomic.h>

static const char PAYLOAD[] = "deposit";

/* ------------------------------------------------ the head includes pending appends */

typedef struct one_append {
    bp_store *s;
    const char *entity;
    bp_status rc;
} one_append;

static void *append_one(void *arg) {
    one_append *a = arg;
    a->rc = bp_append(a->s, NULL, a->entity, "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD);
    return NULL;
}

/* An append waits in its group commit's fdatasync (made slow): a head read meanwhile returns
 * the clock that includes it (waiting for its publish), a stream read right after shows it,
 * and a CAS append on that head succeeds the first time. The old head read returned the
 * published clock, and every CAS on it conflicted until the sync ended. */
static void test_head_includes_pending_append(void) {
    const char *dir = t_dir("cas-pending");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.fault = &f, .durability = BP_DURABLE}));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    f.sync_delay_us = 300000; /* the next sync takes 0.3 s */
    uint64_t syncs0 = t_fault_syncs(&f);
    one_append a = {s, "acct:1", BP_OK};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, append_one, &a) == 0);
    while (t_fault_syncs(&f) == syncs0) /* its sync has begun: the frame is written, unpublished */
        sched_yield();
    uint64_t clock = 0;
    bp_hash head;
    CHECK_OK(bp_entity_head(s, &clock, &head, "acct:1"));
    CHECK_EQ(clock, 2);
    CHECK_EQ(t_count_stream(s, "acct:1"), 2); /* what the head counts is visible */
    pthread_join(t, NULL);
    CHECK_OK(a.rc);
    f.sync_delay_us = 0;
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = clock;
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, "acct:1", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD, &o));
    CHECK_EQ(r.clock, 3);
    CHECK(memcmp(r.prev_hash.b, head.b, 32) == 0); /* the hash read with the head chains on */
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* A stale expectation still conflicts, with a message naming both clocks, and writes nothing;
 * the head read for an unknown entity is 0 without waiting. */
static void test_real_conflict_still_refused(void) {
    const char *dir = t_dir("cas-real");
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.durability = BP_DURABLE}));
    uint64_t clock = 9;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:new"));
    CHECK_EQ(clock, 0);
    CHECK_OK(bp_append(s, NULL, "acct:new", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 0;
    CHECK_FAILS(
        bp_append_ex(s, NULL, "acct:new", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD, &o),
        BP_ECONFLICT, "expected clock 0 but the head is at 1");
    CHECK_EQ(t_count_stream(s, "acct:new"), 1);
    bp_turn_done(s); /* this thread's turn from that conflict (a test of turns is below) */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------ many writers on one hot entity */

#define MAX_WRITERS 8

typedef struct writer {
    bp_store *s;
    const char *entity;
    int n;           /* logical appends to make */
    int committed;   /* made */
    int conflicts;   /* in all */
    int max_retries; /* the most any one append needed */
    int gave_up;     /* appends that failed otherwise */
    bool guarded;    /* through bp_evaluate / bp_commit */
    bp_gate_set *gates;
} writer;

static bp_status cas_once(writer *w, bool *conflict) {
    *conflict = false;
    bp_status rc;
    if (w->guarded) {
        bp_proposal p = BP_PROPOSAL_INIT;
        p.entity = w->entity;
        p.scope = "bank";
        p.kind = BP_KIND(1, 1);
        p.payload = PAYLOAD;
        p.len = sizeof PAYLOAD;
        bp_verdict *v = NULL;
        rc = bp_evaluate(w->s, &v, w->gates, &p, BP_EVAL_FAIL_FAST);
        if (!rc) rc = bp_commit(w->s, NULL, v, &p, NULL, NULL);
        bp_verdict_free(v);
    } else {
        uint64_t clock;
        if ((rc = bp_entity_head(w->s, &clock, NULL, w->entity))) return rc;
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.has_expected_clock = true;
        o.expected_clock = clock;
        rc =
            bp_append_ex(w->s, NULL, w->entity, "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD, &o);
    }
    *conflict = rc == BP_ECONFLICT;
    return rc;
}

static void *cas_writer(void *arg) {
    writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        int retries = 0;
        for (;;) {
            bool conflict;
            bp_status rc = cas_once(w, &conflict);
            if (rc == BP_OK) break;
            if (!conflict) {
                w->gave_up++;
                break;
            }
            retries++;
            w->conflicts++;
        }
        if (retries > w->max_retries) w->max_retries = retries;
        w->committed++;
    }
    return NULL;
}

static bp_status allow_all(void *data, bp_store *s, const bp_proposal *p, bp_denial *d) {
    (void)data, (void)s, (void)p, (void)d;
    return BP_OK;
}

/* n writers, each making per logical appends to one entity with read head -> CAS -> retry:
 * every writer commits its share, no append needs more retries than there are other writers,
 * and the entity's clock and chain account for every append. */
static void hot_entity(int n, int per, uint32_t sync_delay_us, bool guarded) {
    const char *dir = t_dir("cas-hot");
    bp_fault f;
    bp_fault_init(&f);
    f.sync_delay_us = sync_delay_us; /* a slow disk: appends wait in their sync */
    uint64_t expire0 = bp__turn_expire_us;
    bp__turn_expire_us = 60u * 1000 * 1000; /* a slow scheduler (TSan) never lapses a turn */
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.fault = &f, .durability = BP_DURABLE}));
    bp_gate_set *gates = NULL;
    CHECK_OK(bp_gate_set_new(&gates));
    CHECK_OK(bp_gate_set_add(gates, "allow", allow_all, NULL));
    writer w[MAX_WRITERS];
    pthread_t t[MAX_WRITERS];
    for (int i = 0; i < n; i++) {
        w[i] = (writer){.s = s, .entity = "acct:hot", .n = per, .guarded = guarded, .gates = gates};
        CHECK(pthread_create(&t[i], NULL, cas_writer, &w[i]) == 0);
    }
    int conflicts = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        conflicts += w[i].conflicts;
    }
    bp__turn_expire_us = expire0;
    fprintf(stderr, "  %d writers x %d%s: %d conflicts, max retries per append:", n, per,
            guarded ? " (evaluate/commit)" : "", conflicts);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %d", w[i].max_retries);
    fprintf(stderr, "\n");
    for (int i = 0; i < n; i++) {
        CHECK_EQ(w[i].gave_up, 0);
        CHECK_EQ(w[i].committed, per);
        CHECK(w[i].max_retries <= n - 1);
    }
    uint64_t clock;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:hot"));
    CHECK_EQ(clock, (uint64_t)n * per);
    CHECK_EQ(t_count_stream(s, "acct:hot"), (uint64_t)n * per);
    CHECK_EQ(__atomic_load_n(&s->n_turns, __ATOMIC_ACQUIRE), 0); /* every turn was used */
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, (uint64_t)n * per);
    bp_gate_set_free(gates);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* Two durable writers on one entity with the 5-attempt loop of examples/cas_retry.c: before,
 * one of them gave up on every append. */
static void test_two_writers(void) {
    hot_entity(2, 200, 1000, false);
}

static void test_eight_writers_one_entity(void) {
    hot_entity(8, 40, 500, false);
}

static void test_eight_writers_evaluate_commit(void) {
    hot_entity(8, 25, 500, true);
}

/* ------------------------------------------------ turns: release and lapse */

typedef struct head_reader {
    bp_store *s;
    uint64_t clock;
    bp_status rc;
    atomic_bool done;
} head_reader;

static void *read_head(void *arg) {
    head_reader *h = arg;
    h->rc = bp_entity_head(h->s, &h->clock, NULL, "acct:t");
    atomic_store(&h->done, true);
    return NULL;
}

static bp_status cas_stale(bp_store *s, const char *entity) {
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 99;
    return bp_append_ex(s, NULL, entity, "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD, &o);
}

/* A conflict gives this thread the entity's turn; its next successful append, to another
 * entity, gives it up: nothing is left for other threads to wait for. A second conflict on
 * another entity moves the turn there. */
static void test_turn_given_up(void) {
    const char *dir = t_dir("cas-turn");
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.durability = BP_DURABLE}));
    CHECK_OK(bp_append(s, NULL, "acct:t", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    CHECK_EQ(cas_stale(s, "acct:t"), BP_ECONFLICT);
    CHECK_EQ(s->n_turns, 1);
    CHECK_EQ(s->turns[0].holders, 1);
    CHECK_EQ(cas_stale(s, "acct:t"), BP_ECONFLICT); /* the same turn, not a second holder */
    CHECK_EQ(s->n_turns, 1);
    CHECK_EQ(s->turns[0].holders, 1);
    CHECK_EQ(cas_stale(s, "acct:u"), BP_ECONFLICT); /* moved to acct:u */
    CHECK_EQ(s->n_turns, 1);
    CHECK_EQ(s->turns[0].key, bp_turn_key("acct:u", 6));
    CHECK_OK(bp_append(s, NULL, "acct:v", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    CHECK_EQ(s->n_turns, 0);
    /* another thread reads the head at once */
    head_reader h = {.s = s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_head, &h) == 0);
    pthread_join(t, NULL);
    CHECK_OK(h.rc);
    CHECK_EQ(h.clock, 1);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A writer that gave up after a conflict holds its turn until it lapses: another thread's
 * head read waits for it and then goes on (it does not wait for ever), and the lapsed entry
 * is gone. */
static void test_abandoned_turn_lapses(void) {
    const char *dir = t_dir("cas-lapse");
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.durability = BP_DURABLE}));
    uint64_t expire0 = bp__turn_expire_us;
    bp__turn_expire_us = 200000;
    CHECK_OK(bp_append(s, NULL, "acct:t", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    CHECK_EQ(cas_stale(s, "acct:t"), BP_ECONFLICT); /* and this thread gives up */
    CHECK_EQ(s->n_turns, 1);
    head_reader h = {.s = s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_head, &h) == 0);
    pthread_join(t, NULL); /* returns once the turn lapsed */
    CHECK_OK(h.rc);
    CHECK_EQ(h.clock, 1);
    CHECK_EQ(__atomic_load_n(&s->n_turns, __ATOMIC_ACQUIRE), 0);
    bp__turn_expire_us = expire0;
    bp_turn_done(s); /* nothing left to give up: a no-op */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A head read waiting for a publish returns when the store fail-stops instead: it never
 * waits for a publish that a failed store may not make, and returns what was published. */
static void *read_head_1(void *arg) {
    head_reader *h = arg;
    h->rc = bp_entity_head(h->s, &h->clock, NULL, "acct:1");
    return NULL;
}

static void test_head_wait_ends_on_failure(void) {
    const char *dir = t_dir("cas-fail");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.fault = &f, .durability = BP_DURABLE}));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    f.sync_delay_us = 300000;
    uint64_t syncs0 = t_fault_syncs(&f);
    one_append a = {s, "acct:1", BP_OK};
    pthread_t t, th;
    CHECK(pthread_create(&t, NULL, append_one, &a) == 0);
    while (t_fault_syncs(&f) == syncs0) /* the second event is written, its sync sleeps */
        sched_yield();
    head_reader h = {.s = s};
    CHECK(pthread_create(&th, NULL, read_head_1, &h) == 0);
    while (!__atomic_load_n(&s->pwaiters, __ATOMIC_SEQ_CST)) /* it waits for the publish */
        sched_yield();
    pthread_mutex_lock(&s->wmu);
    bp_store_fail(s, BP_EIO, 0, "%s: a failure injected by the test", s->dir);
    pthread_mutex_unlock(&s->wmu);
    pthread_join(th, NULL); /* woken by the failure, before the sync ends */
    CHECK_OK(h.rc);
    CHECK_EQ(h.clock, 1);
    pthread_join(t, NULL);
    bp__store_crash(s);
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* ------------------------------------------------ the group commit and head readers */

/* A group-commit leader waits for as many appends as the last sync covered. A thread that
 * cannot append before this sync (its head read waits for an append in the group, or a turn
 * its holder gives up only after this sync) is one of them: the leader does not wait for it
 * to the deadline (raised here to 20 s, so that such a wait shows as a gather that timed out
 * and the head read returns only after it). */
typedef struct turn_then_append {
    bp_store *s;
    bool conflict_first; /* take the entity's turn first (a CAS that conflicts) */
    bp_status rc;
} turn_then_append;

static void *conflict_then_append(void *arg) {
    turn_then_append *a = arg;
    if (a->conflict_first && cas_stale(a->s, "acct:g") != BP_ECONFLICT) {
        a->rc = BP_EINVAL;
        return NULL;
    }
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 1;
    a->rc = bp_append_ex(a->s, NULL, "acct:g", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD, &o);
    return NULL;
}

static void gather_counts_waiter(bool turn) {
    const char *dir = t_dir(turn ? "cas-gather-turn" : "cas-gather-head");
    uint64_t wait0 = bp__group_wait_us, expire0 = bp__turn_expire_us;
    bp__group_wait_us = 20u * 1000 * 1000;
    bp__turn_expire_us = 60u * 1000 * 1000; /* the turn lasts while the leader gathers */
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &(t_open_opts){.durability = BP_DURABLE}));
    CHECK_OK(bp_append(s, NULL, "acct:g", "bank", BP_KIND(1, 1), PAYLOAD, sizeof PAYLOAD));
    bp__store_group(s, 2, NULL, NULL); /* the next leader waits for a second append */
    turn_then_append a = {s, turn, BP_OK};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, conflict_then_append, &a) == 0);
    bool gathering = false;
    for (int i = 0; i < 200000 && !gathering; i++) { /* its append leads a gather */
        bp__store_group(s, 0, &gathering, NULL);
        if (!gathering) usleep(50);
    }
    CHECK(gathering);
    uint64_t clock = 0;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:g")); /* waits for that append's sync */
    pthread_join(t, NULL);
    CHECK_OK(a.rc);
    CHECK_EQ(clock, 2);
    uint64_t timeouts = 99;
    bp__store_group(s, 0, NULL, &timeouts);
    CHECK_EQ(timeouts, 0);
    CHECK_OK(bp_store_close(s));
    bp__group_wait_us = wait0;
    bp__turn_expire_us = expire0;
    t_rmdir(dir);
}

static void test_gather_counts_head_reader(void) {
    gather_counts_waiter(false);
}

static void test_gather_counts_turn_waiter(void) {
    gather_counts_waiter(true);
}

int main(void) {
    RUN(test_head_includes_pending_append);
    RUN(test_real_conflict_still_refused);
    RUN(test_turn_given_up);
    RUN(test_abandoned_turn_lapses);
    RUN(test_head_wait_ends_on_failure);
    RUN(test_gather_counts_head_reader);
    RUN(test_gather_counts_turn_waiter);
    RUN(test_two_writers);
    RUN(test_eight_writers_one_entity);
    RUN(test_eight_writers_evaluate_commit);
    T_DONE();
}
