/* Control plane, handing appends to the store: tickets (bp_submit / bp_try_submit: submission
 * order from 4 threads through a small queue, BP_EBUSY, timeouts, outcomes decided at commit,
 * close draining, a failed fdatasync reported by its tickets) and the outbox (staging, failed
 * flushes that keep the items). */
#include "t.h"
#include "platform/platform.h"

#include <pthread.h>

/* ----------------------------------------------------------------- tickets */

static void test_submit_in_order(void) {
    const char *dir = t_dir("submit-order");
    bp_store *s = t_open(dir, NULL);
    enum { N = 300 };
    bp_ticket *t[N];
    for (uint32_t i = 0; i < N; i++) {
        char payload[16];
        int len = snprintf(payload, sizeof payload, "p%u", i);
        CHECK_OK(bp_submit(s, &t[i], i % 2 ? "acct:a" : "acct:b", "bank", BP_KIND(1, 1), payload,
                           (size_t)len, NULL));
        memset(payload, 'x', sizeof payload); /* the ticket holds its own copy */
    }
    uint64_t last = 0;
    for (uint32_t i = 0; i < N; i++) {
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_ticket_wait(t[i], &r, BP_WAIT_FOREVER));
        CHECK(bp_ticket_poll(t[i]));
        CHECK(r.global_seq > last); /* committed in submission order */
        last = r.global_seq;
        CHECK_EQ(r.durability, BP_DUR_SYNC);
        CHECK_EQ(r.clock, i / 2 + 1);
        /* the same answer again */
        bp_receipt r2 = BP_RECEIPT_INIT;
        CHECK_OK(bp_ticket_wait(t[i], &r2, 0));
        CHECK_EQ(r2.global_seq, r.global_seq);
        bp_event *ev;
        CHECK_OK(bp_get(s, &ev, &r.event_id));
        char want[16];
        int len = snprintf(want, sizeof want, "p%u", i);
        CHECK_EQ(ev->payload_len, (size_t)len);
        CHECK(memcmp(ev->payload, want, (size_t)len) == 0);
        bp_event_free(ev);
        bp_ticket_free(t[i]);
    }
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.fsyncs < N); /* the thread shared syncs among the tickets it took together */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_submit_bad_input(void) {
    const char *dir = t_dir("submit-bad");
    bp_store *s = t_open(dir, NULL);
    bp_ticket *t = (bp_ticket *)&t;
    CHECK_FAILS(bp_submit(s, &t, "", "x", BP_KIND(1, 1), NULL, 0, NULL), BP_EINVAL, "entity");
    CHECK(t == NULL);
    CHECK_FAILS(bp_submit(s, &t, "batpak:mine", "x", BP_KIND(1, 1), NULL, 0, NULL), BP_EINVAL,
                "reserved");
    CHECK_FAILS(bp_try_submit(s, &t, "e", "x", BP_KIND_SYSTEM_DENIAL, NULL, 0, NULL), BP_EINVAL,
                "kind");
    CHECK_FAILS(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), NULL, 5, NULL), BP_EINVAL, "NULL");
    static uint8_t big[BP_MAX_PAYLOAD + 1];
    CHECK_FAILS(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), big, sizeof big, NULL), BP_ETOOBIG,
                "exceeds");
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.struct_size = 99;
    CHECK_FAILS(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), "a", 1, &o), BP_EINVAL, "struct_size");
    CHECK_FAILS(bp_submit(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1, NULL), BP_EINVAL, "out");
    CHECK_FAILS(bp_submit(NULL, &t, "e", "x", BP_KIND(1, 1), "a", 1, NULL), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_ticket_wait(NULL, NULL, 0), BP_EINVAL, "NULL");
    CHECK(!bp_ticket_poll(NULL));
    bp_ticket_free(NULL);
    CHECK_EQ(t_count_stream(s, "e"), 0);
    CHECK_OK(bp_store_close(s));
    /* a read-only handle queues nothing */
    s = t_open(dir, &(t_open_opts){.read_only = true});
    CHECK_FAILS(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), "a", 1, NULL), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(s));
    /* the queue size is checked at open */
    bp_open_options oo = BP_OPEN_OPTIONS_INIT;
    oo.submit_queue = BP_SUBMIT_QUEUE_MAX + 1;
    CHECK_FAILS(bp_store_open(&s, dir, &oo), BP_EINVAL, "submit_queue");
    oo.submit_queue = 1;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    CHECK_OK(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_ticket_wait(t, NULL, BP_WAIT_FOREVER));
    bp_ticket_free(t);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* CAS and idempotency are decided at commit and reported by the ticket. */
static void test_submit_conflicts(void) {
    const char *dir = t_dir("submit-cas");
    bp_store *s = t_open(dir, NULL);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 0;
    bp_ticket *a, *b, *c, *d;
    CHECK_OK(bp_submit(s, &a, "order:1", "shop", BP_KIND(1, 1), "a", 1, &o));
    CHECK_OK(bp_submit(s, &b, "order:1", "shop", BP_KIND(1, 1), "b", 1, &o)); /* stale */
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_ticket_wait(a, &r, BP_WAIT_FOREVER));
    CHECK_FAILS(bp_ticket_wait(b, &r, BP_WAIT_FOREVER), BP_ECONFLICT, "expected clock 0");
    CHECK_FAILS(bp_ticket_wait(b, NULL, 0), BP_ECONFLICT, "expected clock 0"); /* again */
    bp_append_options k = BP_APPEND_OPTIONS_INIT;
    char key[32];
    snprintf(key, sizeof key, "pay-7");
    k.idempotency_key = key;
    CHECK_OK(bp_submit(s, &c, "order:1", "shop", BP_KIND(1, 2), "c", 1, &k));
    memset(key, 0, sizeof key); /* copied */
    snprintf(key, sizeof key, "pay-7");
    CHECK_OK(bp_submit(s, &d, "order:1", "shop", BP_KIND(1, 2), "c", 1, &k));
    bp_receipt rc = BP_RECEIPT_INIT, rd = BP_RECEIPT_INIT;
    CHECK_OK(bp_ticket_wait(c, &rc, BP_WAIT_FOREVER));
    CHECK_OK(bp_ticket_wait(d, &rd, BP_WAIT_FOREVER));
    CHECK(!rc.replayed);
    CHECK(rd.replayed);
    CHECK_EQ(rd.global_seq, rc.global_seq);
    CHECK_EQ(t_count_stream(s, "order:1"), 2);
    bp_ticket_free(a);
    bp_ticket_free(b);
    bp_ticket_free(c);
    bp_ticket_free(d);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A full queue: try_submit fails at once, submit waits for room. The submit thread is held
 * in a slow fdatasync so that the queue stays full while we look. */
static void test_try_submit_full(void) {
    const char *dir = t_dir("submit-full");
    bp_fault f;
    bp_fault_init(&f);
    f.sync_delay_us = 400000;
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &f, .submit_queue = 1});
    bp_ticket *a, *b, *c = NULL;
    CHECK_OK(bp_submit(s, &a, "e", "x", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_submit(s, &b, "e", "x", BP_KIND(1, 1), "b", 1, NULL)); /* once a is taken */
    /* a is in its fdatasync, b fills the queue */
    CHECK_FAILS(bp_try_submit(s, &c, "e", "x", BP_KIND(1, 1), "c", 1, NULL), BP_EBUSY,
                "queue is full");
    CHECK(c == NULL);
    bp_store_diagnostics dg;
    dg.struct_size = sizeof dg;
    CHECK_OK(bp_store_diagnostics_get(s, &dg));
    CHECK_EQ(dg.submit_queued, 1); /* back-pressure is visible */
    CHECK_EQ(dg.submit_capacity, 1);
    CHECK(!bp_ticket_poll(b));
    CHECK_FAILS(bp_ticket_wait(b, NULL, 0), BP_ETIMEDOUT, "still queued");
    CHECK_FAILS(bp_ticket_wait(b, NULL, 1), BP_ETIMEDOUT, "after 1 ms");
    CHECK_OK(bp_ticket_wait(b, NULL, BP_WAIT_FOREVER));
    CHECK(bp_ticket_poll(a));
    CHECK_OK(bp_try_submit(s, &c, "e", "x", BP_KIND(1, 1), "c", 1, NULL));
    CHECK_OK(bp_ticket_wait(c, NULL, BP_WAIT_FOREVER));
    CHECK_EQ(t_count_stream(s, "e"), 3);
    bp_ticket_free(a);
    bp_ticket_free(b);
    bp_ticket_free(c);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* Close commits every queued append; tickets outlive the store. */
static void test_submit_close_drains(void) {
    const char *dir = t_dir("submit-close");
    bp_store *s = t_open(dir, NULL);
    enum { N = 500 };
    bp_ticket *t[N];
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_NO_SYNC;
    for (int i = 0; i < N; i++)
        CHECK_OK(bp_submit(s, &t[i], "e", "x", BP_KIND(1, 1), &i, sizeof i, i % 3 ? &o : NULL));
    for (int i = 0; i < N; i += 2) { /* released before they are decided, most of them */
        bp_ticket_free(t[i]);
        t[i] = NULL;
    }
    CHECK_OK(bp_store_close(s));
    for (int i = 1; i < N; i += 2) {
        CHECK(bp_ticket_poll(t[i]));
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_ticket_wait(t[i], &r, 0));
        CHECK_EQ(r.clock, (uint64_t)i + 1);
        bp_ticket_free(t[i]);
    }
    s = t_open(dir, NULL);
    CHECK_EQ(t_count_stream(s, "e"), N);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A failed fdatasync: the durable tickets it covered report it; later ones report the
 * fail-stop; nothing unsynced is claimed durable. */
static void test_submit_sync_failure(void) {
    const char *dir = t_dir("submit-eio");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &f});
    bp_ticket *a, *b;
    CHECK_OK(bp_submit(s, &a, "e", "x", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_ticket_wait(a, NULL, BP_WAIT_FOREVER));
    bp_ticket_free(a);
    f.fail_sync_at = f.syncs + 1;
    CHECK_OK(bp_submit(s, &a, "e", "x", BP_KIND(1, 1), "b", 1, NULL));
    CHECK_FAILS(bp_ticket_wait(a, NULL, BP_WAIT_FOREVER), BP_EIO, "fdatasync");
    CHECK_OK(bp_submit(s, &b, "e", "x", BP_KIND(1, 1), "c", 1, NULL));
    CHECK_FAILS(bp_ticket_wait(b, NULL, BP_WAIT_FOREVER), BP_EIO, "fail-stopped");
    bp_ticket_free(a);
    bp_ticket_free(b);
    CHECK_EQ(bp_store_close(s), BP_EIO);
    bp_fault_destroy(&f);
    s = t_open(dir, NULL);
    CHECK(t_count_stream(s, "e") >= 1); /* the acknowledged one; the failed ones may be cut */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A durable append and an unsynced one after it, committed in one group whose fdatasync
 * fails: the unsynced one must not publish the durable one before its sync, so nothing of
 * the group becomes visible. (The group forms while the thread sleeps in the sync of the
 * append before.) */
static void test_submit_group_publishes_after_sync(void) {
    const char *dir = t_dir("submit-group");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &f});
    pthread_mutex_lock(&f.mu);
    f.sync_delay_us = 300000;
    uint64_t syncs0 = f.syncs;
    pthread_mutex_unlock(&f.mu);
    bp_ticket *x, *a, *b;
    CHECK_OK(bp_submit(s, &x, "e", "x", BP_KIND(1, 1), "x", 1, NULL));
    for (;;) { /* until the thread is in x's sync */
        pthread_mutex_lock(&f.mu);
        bool in = f.syncs > syncs0;
        if (in) f.fail_sync_at = f.syncs + 1; /* the next group's sync fails */
        pthread_mutex_unlock(&f.mu);
        if (in) break;
        bp_pf_yield();
    }
    bp_append_options ns = BP_APPEND_OPTIONS_INIT;
    ns.durability = BP_NO_SYNC;
    CHECK_OK(bp_submit(s, &a, "e", "x", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_submit(s, &b, "e", "x", BP_KIND(1, 1), "b", 1, &ns));
    CHECK_OK(bp_ticket_wait(x, NULL, BP_WAIT_FOREVER));
    CHECK_FAILS(bp_ticket_wait(a, NULL, BP_WAIT_FOREVER), BP_EIO, "fdatasync");
    (void)bp_ticket_wait(b, NULL, BP_WAIT_FOREVER);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 1); /* x only: a was never synced, b comes after it */
    bp_ticket_free(x);
    bp_ticket_free(a);
    bp_ticket_free(b);
    CHECK_EQ(bp_store_close(s), BP_EIO);
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

typedef struct submitter {
    bp_store *s;
    int id;
    int failures;
} submitter;

static void *submit_thread(void *arg) {
    submitter *w = arg;
    enum { PER = 400 };
    static __thread bp_ticket *t[PER];
    char entity[32];
    snprintf(entity, sizeof entity, "thread:%d", w->id);
    for (int i = 0; i < PER; i++) {
        bp_status rc;
        while ((rc = bp_try_submit(w->s, &t[i], entity, "x", BP_KIND(1, 1), &i, sizeof i, NULL)) ==
               BP_EBUSY)
            bp_pf_yield();
        if (rc) w->failures++;
    }
    uint64_t last = 0;
    for (int i = 0; i < PER; i++) {
        bp_receipt r = BP_RECEIPT_INIT;
        if (!t[i] || bp_ticket_wait(t[i], &r, BP_WAIT_FOREVER) || r.clock != (uint64_t)i + 1 ||
            r.global_seq <= last)
            w->failures++;
        else
            last = r.global_seq;
        bp_ticket_free(t[i]);
    }
    return NULL;
}

static void test_submit_concurrent(void) {
    const char *dir = t_dir("submit-threads");
    bp_store *s = t_open(dir, &(t_open_opts){.submit_queue = 64});
    submitter w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (submitter){s, i, 0};
        CHECK_EQ(pthread_create(&th[i], NULL, submit_thread, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(w[i].failures, 0);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 1600);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------------ outbox */

static void test_outbox(void) {
    const char *dir = t_dir("outbox");
    bp_store *s = t_open(dir, NULL);
    bp_outbox *ob;
    CHECK_OK(bp_outbox_new(s, &ob));
    CHECK_OK(bp_outbox_flush(ob, NULL)); /* empty: nothing written */
    char buf[8] = "first";
    CHECK_OK(bp_outbox_stage(ob, "order:1", "shop", BP_KIND(1, 1), buf, 5, NULL));
    memcpy(buf, "XXXXX", 5); /* staged items are copies */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 0;
    CHECK_OK(bp_outbox_stage(ob, "stock:9", "shop", BP_KIND(1, 2), "-1", 2, &o));
    CHECK_OK(bp_outbox_stage(ob, "order:1", "shop", BP_KIND(1, 3), "paid", 4, NULL));
    CHECK_EQ(bp_outbox_len(ob), 3);
    CHECK_EQ(t_count_stream(s, "order:1"), 0); /* staged is not written */
    /* a bad item is refused with nothing staged */
    CHECK_FAILS(bp_outbox_stage(ob, "batpak:x", "shop", BP_KIND(1, 1), NULL, 0, NULL), BP_EINVAL,
                "batch item 3");
    CHECK_FAILS(bp_outbox_stage(ob, "e", "shop", BP_KIND(0, 9), NULL, 0, NULL), BP_EINVAL, "kind");
    CHECK_EQ(bp_outbox_len(ob), 3);
    bp_receipt r[3];
    t_receipts(r, sizeof r / sizeof r[0]);
    CHECK_OK(bp_outbox_flush(ob, r));
    CHECK_EQ(bp_outbox_len(ob), 0);
    CHECK_EQ(r[1].global_seq, r[0].global_seq + 1);
    CHECK_EQ(r[2].clock, 2);
    CHECK_EQ(r[0].durability, BP_DUR_SYNC);
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r[0].event_id));
    CHECK_EQ(ev->batch_count, 3);
    CHECK(memcmp(ev->payload, "first", 5) == 0);
    bp_event_free(ev);
    /* a failed flush writes nothing and keeps the items */
    CHECK_OK(bp_outbox_stage(ob, "order:2", "shop", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_outbox_stage(ob, "stock:9", "shop", BP_KIND(1, 2), "-1", 2, &o)); /* stale */
    CHECK_FAILS(bp_outbox_flush(ob, r), BP_ECONFLICT, "batch item 1");
    CHECK_EQ(bp_outbox_len(ob), 2);
    CHECK_EQ(t_count_stream(s, "order:2"), 0);
    bp_outbox_discard(ob);
    CHECK_EQ(bp_outbox_len(ob), 0);
    CHECK_OK(bp_outbox_flush(ob, r));
    CHECK_EQ(t_count_stream(s, "order:2"), 0);
    /* still usable after a discard */
    CHECK_OK(bp_outbox_stage(ob, "order:2", "shop", BP_KIND(1, 1), "b", 1, NULL));
    CHECK_OK(bp_outbox_flush(ob, NULL));
    CHECK_EQ(t_count_stream(s, "order:2"), 1);
    /* staged items left at free are dropped */
    CHECK_OK(bp_outbox_stage(ob, "order:3", "shop", BP_KIND(1, 1), "c", 1, NULL));
    bp_outbox_free(ob);
    CHECK_EQ(t_count_stream(s, "order:3"), 0);
    CHECK_FAILS(bp_outbox_new(NULL, &ob), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_outbox_stage(NULL, "e", "s", BP_KIND(1, 1), NULL, 0, NULL), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_outbox_flush(NULL, NULL), BP_EINVAL, "NULL");
    CHECK_EQ(bp_outbox_len(NULL), 0);
    bp_outbox_free(NULL);
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.read_only = true});
    CHECK_FAILS(bp_outbox_new(s, &ob), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_submit_in_order);
    RUN(test_submit_bad_input);
    RUN(test_submit_conflicts);
    RUN(test_try_submit_full);
    RUN(test_submit_close_drains);
    RUN(test_submit_sync_failure);
    RUN(test_submit_group_publishes_after_sync);
    RUN(test_submit_concurrent);
    RUN(test_outbox);
    T_DONE();
}
