/* Visibility fences: invisible until commit (to reads, cursors, subscribers), atomic,
 * cancel drops, entity clocks dense across commit and cancel while other writers go on,
 * bad input, close with a fence open, many threads appending into one fence. */
#include "t.h"
#include "bp_testing.h"

#include <errno.h>
#include <pthread.h>

/* Clocks of the entity's stream are 1..n and each prev_hash is the previous hash. */
static void check_chain(bp_store *s, const char *entity) {
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(s, &it, entity, 0));
    uint64_t want = 1;
    bp_hash prev = {{0}};
    while (bp_iter_next(it, &ev) == BP_OK) {
        CHECK_EQ(ev->clock, want);
        CHECK(memcmp(ev->prev_hash.b, prev.b, 32) == 0);
        prev = ev->event_hash;
        want++;
    }
    bp_iter_free(it);
}

static void test_fence_invisible_until_commit(void) {
    const char *dir = t_dir("fence-commit");
    bp_store *s = t_open(dir, NULL);
    CHECK_OK(bp_append(s, NULL, "acct:a", "bank", BP_KIND(1, 1), "open", 4));
    bp_region all = BP_REGION_INIT;
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &c, &all, 0));
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &sub, &all, 64));
    const bp_event *evs[16];
    size_t n;
    CHECK_OK(bp_cursor_next(c, evs, 16, &n, 0));
    CHECK_EQ(n, 1);

    bp_fence *f;
    CHECK_OK(bp_fence_begin(s, &f));
    bp_ticket *t[3];
    CHECK_OK(bp_fence_append(f, &t[0], "acct:a", "bank", BP_KIND(1, 2), "debit", 5, NULL));
    CHECK_OK(bp_fence_append(f, &t[1], "acct:b", "bank", BP_KIND(1, 3), "credit", 6, NULL));
    CHECK_OK(bp_fence_append(f, &t[2], "acct:a", "bank", BP_KIND(1, 4), "fee", 3, NULL));
    CHECK_EQ(bp_fence_len(f), 3);
    CHECK(!bp_ticket_poll(t[0]));
    CHECK_FAILS(bp_ticket_wait(t[0], NULL, 1), BP_ETIMEDOUT, "still queued");

    /* an append outside the fence goes on and is visible at once */
    bp_receipt out = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &out, "acct:a", "bank", BP_KIND(1, 5), "outside", 7));
    CHECK_EQ(out.clock, 2);
    CHECK_EQ(out.global_seq, 2);

    /* nothing of the fence is visible anywhere */
    CHECK_EQ(t_count_stream(s, "acct:a"), 2);
    CHECK_EQ(t_count_stream(s, "acct:b"), 0);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 2);
    CHECK_OK(bp_cursor_next(c, evs, 16, &n, 0));
    CHECK_EQ(n, 1);
    CHECK_EQ(evs[0]->global_seq, 2);
    CHECK_EQ(bp_cursor_next(c, evs, 16, &n, 0), BP_ETIMEDOUT);
    bp_notice no = BP_NOTICE_INIT;
    CHECK_OK(bp_subscription_next(sub, &no, 0));
    CHECK_EQ(no.global_seq, 2);
    CHECK_EQ(bp_subscription_next(sub, &no, 0), BP_ETIMEDOUT);

    CHECK_OK(bp_fence_commit(f));
    CHECK_EQ(bp_fence_len(f), 0);
    bp_receipt r[3];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 3; i++) {
        CHECK(bp_ticket_poll(t[i]));
        CHECK_OK(bp_ticket_wait(t[i], &r[i], 0));
        CHECK_EQ(r[i].global_seq, 3u + (unsigned)i); /* after everything committed before */
        CHECK_EQ(r[i].durability, BP_DUR_SYNC);
    }
    CHECK_EQ(r[0].clock, 3); /* acct:a: 1 open, 2 outside, 3 debit, 4 fee */
    CHECK_EQ(r[1].clock, 1);
    CHECK_EQ(r[2].clock, 4);
    CHECK(memcmp(r[2].prev_hash.b, r[0].event_hash.b, 32) == 0);

    /* now visible: reads, the cursor, the subscriber; one batch */
    CHECK_EQ(t_count_stream(s, "acct:a"), 4);
    CHECK_EQ(t_count_stream(s, "acct:b"), 1);
    CHECK_OK(bp_cursor_next(c, evs, 16, &n, 0));
    CHECK_EQ(n, 3);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(evs[i]->batch_count, 3);
        CHECK_EQ(evs[i]->batch_index, i);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bp_subscription_next(sub, &no, 0));
        CHECK_EQ(no.global_seq, 3u + (unsigned)i);
    }
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r[1].event_id));
    CHECK(ev->payload_len == 6 && memcmp(ev->payload, "credit", 6) == 0);
    bp_event_free(ev);

    /* closed: no more appends, no second commit or cancel */
    bp_ticket *late;
    CHECK_FAILS(bp_fence_append(f, &late, "acct:a", "bank", BP_KIND(1, 1), "x", 1, NULL), BP_EINVAL,
                "already committed");
    CHECK(late == NULL);
    CHECK_FAILS(bp_fence_commit(f), BP_EINVAL, "already");
    CHECK_FAILS(bp_fence_cancel(f), BP_EINVAL, "already");
    for (int i = 0; i < 3; i++)
        bp_ticket_free(t[i]);
    bp_fence_free(f);
    bp_unsubscribe(sub);
    bp_cursor_free(c);

    /* an empty fence commits as nothing */
    CHECK_OK(bp_fence_begin(s, &f));
    CHECK_OK(bp_fence_commit(f));
    bp_fence_free(f);
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 5);

    /* after a reopen the fence's events are there, the chains verify */
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, NULL);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 5);
    check_chain(s, "acct:a");
    CHECK_OK(bp_get(s, &ev, &r[2].event_id));
    CHECK_EQ(ev->clock, 4);
    CHECK(memcmp(ev->event_hash.b, r[2].event_hash.b, 32) == 0);
    bp_event_free(ev);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_fence_cancel(void) {
    const char *dir = t_dir("fence-cancel");
    bp_store *s = t_open(dir, NULL);
    CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), "a", 1));
    bp_fence *f;
    CHECK_OK(bp_fence_begin(s, &f));
    bp_ticket *t1, *t2;
    CHECK_OK(bp_fence_append(f, &t1, "e:1", "s", BP_KIND(1, 1), "b", 1, NULL));
    CHECK_OK(bp_fence_append(f, &t2, "e:2", "s", BP_KIND(1, 1), "c", 1, NULL));
    CHECK_OK(bp_fence_cancel(f));
    CHECK_FAILS(bp_ticket_wait(t1, NULL, BP_WAIT_FOREVER), BP_ECANCELED, "cancelled");
    CHECK_FAILS(bp_ticket_wait(t2, NULL, 0), BP_ECANCELED, "cancelled");
    CHECK_FAILS(bp_fence_commit(f), BP_EINVAL, "already");
    bp_fence_free(f);
    bp_ticket_free(t1);
    bp_ticket_free(t2);
    /* nothing was written; the next append takes the next clock and seq: no gaps */
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "e:1", "s", BP_KIND(1, 1), "d", 1));
    CHECK_EQ(r.clock, 2);
    CHECK_EQ(r.global_seq, 2);
    CHECK_EQ(t_count_stream(s, "e:2"), 0);

    /* freeing an open fence cancels it; the ticket outlives the fence */
    CHECK_OK(bp_fence_begin(s, &f));
    CHECK_OK(bp_fence_append(f, &t1, "e:1", "s", BP_KIND(1, 1), "e", 1, NULL));
    bp_fence_free(f);
    CHECK_FAILS(bp_ticket_wait(t1, NULL, BP_WAIT_FOREVER), BP_ECANCELED, "freed uncommitted");
    bp_ticket_free(t1);

    /* closing the store cancels what is still open */
    CHECK_OK(bp_fence_begin(s, &f));
    CHECK_OK(bp_fence_append(f, &t1, "e:1", "s", BP_KIND(1, 1), "f", 1, NULL));
    CHECK_OK(bp_store_close(s));
    CHECK_FAILS(bp_ticket_wait(t1, NULL, BP_WAIT_FOREVER), BP_ECANCELED, "closed");
    CHECK_FAILS(bp_fence_commit(f), BP_EINVAL, "store was closed");
    CHECK_EQ(bp_fence_len(f), 0);
    bp_fence_free(f);
    bp_ticket_free(t1);

    s = t_open(dir, NULL);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 2);
    check_chain(s, "e:1");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_fence_bad_input(void) {
    const char *dir = t_dir("fence-bad");
    bp_store *s = t_open(dir, NULL);
    bp_fence *f = (bp_fence *)1;
    bp_ticket *t = (bp_ticket *)1;
    CHECK_FAILS(bp_fence_begin(NULL, &f), BP_EINVAL, "NULL store");
    CHECK(f == NULL);
    CHECK_FAILS(bp_fence_begin(s, NULL), BP_EINVAL, "out is NULL");
    CHECK_FAILS(bp_fence_append(NULL, &t, "e:1", "s", BP_KIND(1, 1), "x", 1, NULL), BP_EINVAL,
                "NULL fence");
    CHECK(t == NULL);
    CHECK_FAILS(bp_fence_commit(NULL), BP_EINVAL, "NULL fence");
    CHECK_FAILS(bp_fence_cancel(NULL), BP_EINVAL, "NULL fence");
    CHECK_EQ(bp_fence_len(NULL), 0);
    bp_fence_free(NULL);

    CHECK_OK(bp_fence_begin(s, &f));
    CHECK_FAILS(bp_fence_append(f, NULL, "e:1", "s", BP_KIND(1, 1), "x", 1, NULL), BP_EINVAL,
                "out is NULL");
    CHECK_FAILS(bp_fence_append(f, &t, "", "s", BP_KIND(1, 1), "x", 1, NULL), BP_EINVAL, "entity");
    CHECK_FAILS(bp_fence_append(f, &t, "e:1", "s", 0x0001, "x", 1, NULL), BP_EINVAL, "kind");
    CHECK(t == NULL);
    CHECK_EQ(bp_fence_len(f), 0); /* nothing staged by a refused append */

    /* a CAS expectation that fails at commit fails every ticket; nothing is written */
    CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), "x", 1));
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 1;
    bp_ticket *a, *b;
    CHECK_OK(bp_fence_append(f, &a, "e:2", "s", BP_KIND(1, 1), "y", 1, NULL));
    CHECK_OK(bp_fence_append(f, &b, "e:1", "s", BP_KIND(1, 1), "z", 1, &o));
    CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), "moved", 5)); /* head now 2 */
    CHECK_FAILS(bp_fence_commit(f), BP_ECONFLICT, "fence commit failed");
    CHECK_FAILS(bp_ticket_wait(a, NULL, 0), BP_ECONFLICT, "fence commit failed");
    CHECK_FAILS(bp_ticket_wait(b, NULL, 0), BP_ECONFLICT, "fence commit failed");
    CHECK_EQ(t_count_stream(s, "e:2"), 0);
    CHECK_FAILS(bp_fence_cancel(f), BP_EINVAL, "already"); /* closed by the failed commit */
    bp_ticket_free(a);
    bp_ticket_free(b);
    bp_fence_free(f);

    /* a read-only handle has no fences */
    CHECK_OK(bp_store_close(s));
    bp_open_options ro = BP_OPEN_OPTIONS_INIT;
    ro.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &ro));
    CHECK_FAILS(bp_fence_begin(s, &f), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A failed write during the commit: the tickets carry the I/O error, nothing of the fence
 * becomes visible, and after a reopen the store holds everything before it, verified. */
static void test_fence_commit_io_failure(void) {
    const char *dir = t_dir("fence-eio");
    bp_fault flt;
    bp_fault_init(&flt);
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &flt});
    CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), "a", 1));
    bp_fence *f;
    CHECK_OK(bp_fence_begin(s, &f));
    bp_ticket *t1, *t2;
    CHECK_OK(bp_fence_append(f, &t1, "e:1", "s", BP_KIND(1, 1), "b", 1, NULL));
    CHECK_OK(bp_fence_append(f, &t2, "e:2", "s", BP_KIND(1, 1), "c", 1, NULL));
    pthread_mutex_lock(&flt.mu);
    flt.fail_sync_at = flt.syncs + 1;
    flt.fail_errno = EIO;
    pthread_mutex_unlock(&flt.mu);
    CHECK_FAILS(bp_fence_commit(f), BP_EIO, "fence commit failed");
    CHECK_FAILS(bp_ticket_wait(t1, NULL, 0), BP_EIO, "fence commit failed");
    CHECK_FAILS(bp_ticket_wait(t2, NULL, 0), BP_EIO, "fence commit failed");
    bp_ticket_free(t1);
    bp_ticket_free(t2);
    CHECK_EQ(t_count_stream(s, "e:2"), 0);
    bp_fence_free(f);
    bp__store_crash(s);
    bp_fault_power_loss(&flt);
    bp_fault_destroy(&flt);
    s = t_open(dir, NULL);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 1);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

typedef struct racer {
    bp_store *s;
    bp_fence *f;
    int id;
    bp_ticket *t[50];
} racer;

static void *fence_appender(void *arg) {
    racer *r = arg;
    char ent[16];
    snprintf(ent, sizeof ent, "e:%d", r->id % 2);
    for (int i = 0; i < 50; i++)
        if (bp_fence_append(r->f, &r->t[i], ent, "s", BP_KIND(1, 1), "x", 1, NULL)) return r;
    return NULL;
}

static void *plain_appender(void *arg) {
    racer *r = arg;
    char ent[16];
    snprintf(ent, sizeof ent, "e:%d", r->id % 2);
    for (int i = 0; i < 50; i++)
        if (bp_append(r->s, NULL, ent, "s", BP_KIND(1, 2), "y", 1)) return r;
    return NULL;
}

/* Threads append into one fence while others append outside it; clocks stay dense. */
static void test_fence_threads(void) {
    const char *dir = t_dir("fence-threads");
    bp_store *s = t_open(dir, NULL);
    bp_fence *f;
    CHECK_OK(bp_fence_begin(s, &f));
    racer r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){s, f, i, {0}};
        CHECK(pthread_create(&th[i], NULL, i < 2 ? fence_appender : plain_appender, &r[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        CHECK(ret == NULL);
    }
    CHECK_EQ(bp_fence_len(f), 100);
    CHECK_EQ(t_count_stream(s, "e:0") + t_count_stream(s, "e:1"), 100);
    CHECK_OK(bp_fence_commit(f));
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 50; k++) {
            bp_receipt rc = BP_RECEIPT_INIT;
            CHECK_OK(bp_ticket_wait(r[i].t[k], &rc, BP_WAIT_FOREVER));
            CHECK(rc.global_seq > 100); /* the fence committed after the plain appends */
            bp_ticket_free(r[i].t[k]);
        }
    bp_fence_free(f);
    check_chain(s, "e:0");
    check_chain(s, "e:1");
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 200);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_fence_invisible_until_commit);
    RUN(test_fence_cancel);
    RUN(test_fence_bad_input);
    RUN(test_fence_commit_io_failure);
    RUN(test_fence_threads);
    T_DONE();
}
