/* Control plane: tickets (bp_submit / bp_try_submit), the outbox, walk_ancestors. */
#include "t.h"
#include "bp_testing.h"
#include "format/format.h"
#include "platform/platform.h"
#include "store/store_impl.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

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
        bp_receipt r;
        CHECK_OK(bp_ticket_wait(t[i], BP_WAIT_FOREVER, &r));
        CHECK(bp_ticket_poll(t[i]));
        CHECK(r.global_seq > last); /* committed in submission order */
        last = r.global_seq;
        CHECK_EQ(r.durability, BP_DUR_SYNC);
        CHECK_EQ(r.clock, i / 2 + 1);
        /* the same answer again */
        bp_receipt r2;
        CHECK_OK(bp_ticket_wait(t[i], 0, &r2));
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
    bp_stats st;
    CHECK_OK(bp_store_stats(s, &st));
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
    o.version = 99;
    CHECK_FAILS(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), "a", 1, &o), BP_EINVAL, "version");
    CHECK_FAILS(bp_submit(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1, NULL), BP_EINVAL, "out");
    CHECK_FAILS(bp_submit(NULL, &t, "e", "x", BP_KIND(1, 1), "a", 1, NULL), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_ticket_wait(NULL, 0, NULL), BP_EINVAL, "NULL");
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
    /* a version-2 struct ends before submit_queue: whatever lies there is ignored */
    oo.version = 2;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    CHECK_OK(bp_submit(s, &t, "e", "x", BP_KIND(1, 1), "a", 1, NULL));
    CHECK_OK(bp_ticket_wait(t, BP_WAIT_FOREVER, NULL));
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
    bp_receipt r;
    CHECK_OK(bp_ticket_wait(a, BP_WAIT_FOREVER, &r));
    CHECK_FAILS(bp_ticket_wait(b, BP_WAIT_FOREVER, &r), BP_ECONFLICT, "expected clock 0");
    CHECK_FAILS(bp_ticket_wait(b, 0, NULL), BP_ECONFLICT, "expected clock 0"); /* again */
    bp_append_options k = BP_APPEND_OPTIONS_INIT;
    char key[32];
    snprintf(key, sizeof key, "pay-7");
    k.idempotency_key = key;
    CHECK_OK(bp_submit(s, &c, "order:1", "shop", BP_KIND(1, 2), "c", 1, &k));
    memset(key, 0, sizeof key); /* copied */
    snprintf(key, sizeof key, "pay-7");
    CHECK_OK(bp_submit(s, &d, "order:1", "shop", BP_KIND(1, 2), "c", 1, &k));
    bp_receipt rc, rd;
    CHECK_OK(bp_ticket_wait(c, BP_WAIT_FOREVER, &rc));
    CHECK_OK(bp_ticket_wait(d, BP_WAIT_FOREVER, &rd));
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
    bp_diagnostics dg;
    dg.version = BP_DIAGNOSTICS_VERSION;
    CHECK_OK(bp_store_diagnostics(s, &dg, NULL, 0));
    CHECK_EQ(dg.submit_queued, 1); /* back-pressure is visible */
    CHECK_EQ(dg.submit_capacity, 1);
    CHECK(!bp_ticket_poll(b));
    CHECK_FAILS(bp_ticket_wait(b, 0, NULL), BP_ETIMEDOUT, "still queued");
    CHECK_FAILS(bp_ticket_wait(b, 1, NULL), BP_ETIMEDOUT, "after 1 ms");
    CHECK_OK(bp_ticket_wait(b, BP_WAIT_FOREVER, NULL));
    CHECK(bp_ticket_poll(a));
    CHECK_OK(bp_try_submit(s, &c, "e", "x", BP_KIND(1, 1), "c", 1, NULL));
    CHECK_OK(bp_ticket_wait(c, BP_WAIT_FOREVER, NULL));
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
        bp_receipt r;
        CHECK_OK(bp_ticket_wait(t[i], 0, &r));
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
    CHECK_OK(bp_ticket_wait(a, BP_WAIT_FOREVER, NULL));
    bp_ticket_free(a);
    f.fail_sync_at = f.syncs + 1;
    CHECK_OK(bp_submit(s, &a, "e", "x", BP_KIND(1, 1), "b", 1, NULL));
    CHECK_FAILS(bp_ticket_wait(a, BP_WAIT_FOREVER, NULL), BP_EIO, "fdatasync");
    CHECK_OK(bp_submit(s, &b, "e", "x", BP_KIND(1, 1), "c", 1, NULL));
    CHECK_FAILS(bp_ticket_wait(b, BP_WAIT_FOREVER, NULL), BP_EIO, "fail-stopped");
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
    CHECK_OK(bp_ticket_wait(x, BP_WAIT_FOREVER, NULL));
    CHECK_FAILS(bp_ticket_wait(a, BP_WAIT_FOREVER, NULL), BP_EIO, "fdatasync");
    (void)bp_ticket_wait(b, BP_WAIT_FOREVER, NULL);
    bp_stats st;
    CHECK_OK(bp_store_stats(s, &st));
    CHECK_EQ(st.events, 1); /* x only: a was never synced, b comes after it */
    bp_ticket_free(x);
    bp_ticket_free(a);
    bp_ticket_free(b);
    CHECK_EQ(bp_store_close(s), BP_EIO);
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* bp_commit_imported checks each frame against the store itself (the importer's own chain
 * check runs one layer up, so only a direct call reaches these): a clock that does not
 * continue the entity's chain, or a prev_hash that is not its head's hash, is refused with
 * nothing written. */
static void test_commit_imported_checks(void) {
    const char *src_dir = t_dir("imported-src");
    const char *dst_dir = t_dir("imported-dst");
    bp_store *src = t_open(src_dir, NULL);
    bp_store *dst = t_open(dst_dir, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(src, NULL, "acct:1", "bank", BP_KIND(1, 1), "abc", 3));
    bp_buf body[3] = {{0}, {0}, {0}};
    bp_frame fr[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bp_read_body(src, (uint64_t)i + 1, &body[i]));
        CHECK_OK(bp_frame_decode(body[i].data, body[i].len, &fr[i]));
    }
    size_t bad;
    CHECK_OK(bp_commit_imported(dst, &fr[0], 1, false, &bad)); /* the chain's start */
    bp_frame f = fr[1];
    f.f.clock = 3; /* skips clock 2 (prev_hash is still the head's) */
    CHECK_FAILS(bp_commit_imported(dst, &f, 1, false, &bad), BP_ECONFLICT,
                "clock 3, but its head is at 1");
    f = fr[1];
    f.f.prev_hash.b[0] ^= 1; /* clock 2, chained to something else */
    CHECK_FAILS(bp_commit_imported(dst, &f, 1, false, &bad), BP_ECONFLICT,
                "prev_hash is not the hash of its previous event");
    bp_frame two[2] = {fr[1], fr[2]}; /* a bad second frame: the first is not written */
    two[1].f.prev_hash.b[5] ^= 1;
    CHECK_FAILS(bp_commit_imported(dst, two, 2, true, &bad), BP_ECONFLICT, "prev_hash");
    CHECK_EQ(bad, 1);
    bp_stats st;
    CHECK_OK(bp_store_stats(dst, &st));
    CHECK_EQ(st.events, 1);
    CHECK_OK(bp_commit_imported(dst, &fr[1], 2, true, &bad)); /* the real ones continue it */
    CHECK_OK(bp_store_stats(dst, &st));
    CHECK_EQ(st.events, 3);
    for (int i = 0; i < 3; i++)
        bp_buf_free(&body[i]);
    CHECK_OK(bp_store_close(src));
    CHECK_OK(bp_store_close(dst));
    t_rmdir(src_dir);
    t_rmdir(dst_dir);
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
        bp_receipt r;
        if (!t[i] || bp_ticket_wait(t[i], BP_WAIT_FOREVER, &r) || r.clock != (uint64_t)i + 1 ||
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
    bp_verify_report vr;
    CHECK_OK(bp_store_verify(s, &vr));
    CHECK_EQ(vr.events, 1600);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------ diagnostics */

static void test_diagnostics(void) {
    const char *dir = t_dir("diag");
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts o = {
        .segment_size = 4096, .fault = &f, .durability = BP_NO_SYNC, .open_event = true};
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &o));
    for (int i = 0; i < 200; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    bp_diagnostics d;
    d.version = BP_DIAGNOSTICS_VERSION;
    bp_segment_info seg[64];
    CHECK_OK(bp_store_diagnostics(s, &d, seg, 64));
    bp_stats st;
    CHECK_OK(bp_store_stats(s, &st));
    CHECK_EQ(d.segments, st.segments);
    CHECK(d.segments > 2 && d.segments <= 64);
    CHECK(d.open.created);
    CHECK_EQ(d.written_seq, 201); /* with the open event */
    CHECK_EQ(d.published_seq, 201);
    CHECK(d.synced_seq < d.written_seq);
    CHECK_EQ(d.unsynced_events, d.written_seq - d.synced_seq);
    CHECK(!d.failed && !d.read_only);
    uint64_t next = 1, events = 0;
    for (uint32_t i = 0; i < d.segments; i++) {
        CHECK_EQ(seg[i].sealed, i + 1 < d.segments);
        CHECK(seg[i].bytes > 0);
        if (seg[i].events) {
            CHECK_EQ(seg[i].first_seq, next);
            CHECK_EQ(seg[i].last_seq, seg[i].first_seq + seg[i].events - 1);
            next = seg[i].last_seq + 1;
        }
        events += seg[i].events;
    }
    CHECK_EQ(events, 201);
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp_store_diagnostics(s, &d, NULL, 0));
    CHECK_EQ(d.synced_seq, d.written_seq);
    CHECK_EQ(d.unsynced_events, 0);
    /* a fail-stopped store says so, with the original error */
    f.fail_sync_at = f.syncs + 1;
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1));
    CHECK_EQ(bp_store_sync(s), BP_EIO);
    CHECK_OK(bp_store_diagnostics(s, &d, seg, 1)); /* fewer slots than segments is fine */
    CHECK(d.failed);
    CHECK(strstr(d.failed_msg, "fdatasync") != NULL);
    d.version = 99;
    CHECK_FAILS(bp_store_diagnostics(s, &d, NULL, 0), BP_EINVAL, "version");
    d.version = BP_DIAGNOSTICS_VERSION;
    CHECK_FAILS(bp_store_diagnostics(s, &d, NULL, 3), BP_EINVAL, "segs");
    CHECK_FAILS(bp_store_diagnostics(NULL, &d, NULL, 0), BP_EINVAL, "NULL");
    bp_store_close(s);
    bp_fault_destroy(&f);
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

/* --------------------------------------------------------- walk_ancestors */

typedef struct walked {
    uint64_t clock[16];
    char entity[16][32];
    uint32_t depth[16];
    int n, stop_at;
} walked;

static bp_status on_ancestor(void *ctx, const bp_event *ev, uint32_t depth) {
    walked *w = ctx;
    if (w->n >= 16) return BP_EINVAL;
    w->clock[w->n] = ev->clock;
    snprintf(w->entity[w->n], sizeof w->entity[0], "%s", ev->entity);
    w->depth[w->n] = depth;
    w->n++;
    if (w->stop_at && w->n == w->stop_at) return BP_DONE;
    if (ev->payload_len == 4 && memcmp(ev->payload, "fail", 4) == 0)
        return bp_set_error(BP_EDENIED, "the callback refused");
    return BP_OK;
}

/* Change one byte of the stored frame holding the bytes `needle` (and fix its CRC). */
static int tamper_frame(const char *seg, const uint8_t *needle, size_t nlen) {
    int fd = open(seg, O_RDWR);
    if (fd < 0) return -1;
    static uint8_t buf[1 << 20];
    ssize_t len = pread(fd, buf, sizeof buf, 0);
    int rc = -1;
    for (size_t off = BP_SEG_HEADER_SIZE; len > 0 && off + BP_FRAME_PREFIX <= (size_t)len;) {
        uint32_t blen = bp_get_be32(buf + off);
        uint8_t *body = buf + off + BP_FRAME_PREFIX;
        uint8_t *hit = memmem(body, blen, needle, nlen);
        if (hit) {
            hit[0] ^= 0x01;
            bp_put_be32(buf + off + 4, bp_crc32(body, blen));
            rc = pwrite(fd, buf + off, BP_FRAME_PREFIX + blen, (off_t)off) ==
                         (ssize_t)(BP_FRAME_PREFIX + blen)
                     ? 0
                     : -1;
            break;
        }
        off += BP_FRAME_PREFIX + blen;
    }
    close(fd);
    return rc;
}

typedef struct problems_seen {
    int n;
    char entity[8][64]; /* "" for a problem of no entity */
    char text[8][256];
} problems_seen;

static void on_problem(void *ctx, const char *entity, const char *problem) {
    problems_seen *p = ctx;
    if (p->n >= 8) return;
    snprintf(p->entity[p->n], sizeof p->entity[0], "%s", entity ? entity : "");
    snprintf(p->text[p->n], sizeof p->text[0], "%s", problem);
    p->n++;
}

/* A checkpoint with a valid CRC that describes other events (a copy's, same store id):
 * verify reports it; a damaged one is a cache miss, not a problem. */
static void test_verify_checkpoint(void) {
    const char *dir = t_dir("verify-ckpt");
    char copy[1200], from[1300], to[1300];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    t_rmdir(copy);
    bp_store *s = t_open(dir, NULL);
    for (int i = 0; i < 10; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1));
    CHECK_OK(bp_store_snapshot(s, copy, NULL));
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "source", 6));
    CHECK_OK(bp_store_close(s));
    bp_store *c = t_open(copy, NULL);
    CHECK_OK(bp_append(c, NULL, "e", "x", BP_KIND(1, 1), "copy", 4));
    CHECK_OK(bp_store_close(c));
    snprintf(from, sizeof from, "%s/index.ckpt", copy);
    snprintf(to, sizeof to, "%s/index.ckpt", dir);
    CHECK_EQ(rename(from, to), 0);
    s = t_open(dir,
               &(t_open_opts){.read_only = true}); /* read-only: the open does not rewrite it */
    bp_open_report orep;
    bp_store_open_report(s, &orep);
    CHECK(!orep.checkpoint_used); /* open is not fooled either: it scans */
    CHECK(strcmp(orep.checkpoint_note, "does not fit the segments") == 0);
    bp_iter *it;
    const bp_event *ev;
    bp_region q = BP_REGION_INIT;
    q.from_seq = 11;
    CHECK_OK(bp_query(s, &it, &q, BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->payload_len == 6 && memcmp(ev->payload, "source", 6) == 0);
    bp_iter_free(it);
    problems_seen ps = {0};
    bp_verify_report vr;
    CHECK_EQ(bp_store_verify_each(s, &vr, NULL, NULL, on_problem, &ps), BP_ECORRUPT);
    CHECK_EQ(vr.problems, 1);
    CHECK_EQ(ps.n, 1);
    CHECK(ps.entity[0][0] == '\0');
    CHECK(strstr(ps.text[0], "index.ckpt: 1 record(s) do not match the segments, the first for "
                             "seq 11") != NULL);
    CHECK_OK(bp_store_close(s));
    /* damaged: ignored */
    FILE *f = fopen(to, "r+b");
    CHECK(f != NULL);
    fputc('X', f);
    fclose(f);
    s = t_open(dir, &(t_open_opts){.read_only = true});
    CHECK_OK(bp_store_verify_each(s, &vr, NULL, NULL, on_problem, &ps));
    CHECK_OK(bp_store_close(s));
    t_rmdir(copy);
    t_rmdir(dir);
}

static void test_walk_ancestors(void) {
    const char *dir = t_dir("walk");
    bp_store *s = t_open(dir, NULL);
    bp_receipt r[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, &r[i], "acct:1", "bank", BP_KIND(1, 1), i == 1 ? "fail" : "ok",
                           i == 1 ? 4 : 2));
    walked w = {0};
    CHECK_OK(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 2, on_ancestor, &w));
    CHECK_EQ(w.n, 2);
    CHECK_EQ(w.clock[0], 4);
    CHECK_EQ(w.clock[1], 3);
    CHECK_EQ(w.depth[1], 2);
    memset(&w, 0, sizeof w);
    w.stop_at = 1;
    CHECK_OK(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 1);
    /* the callback's error ends the walk and is returned */
    memset(&w, 0, sizeof w);
    CHECK_FAILS(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_EDENIED,
                "callback refused");
    CHECK_EQ(w.n, 3); /* clocks 4, 3, 2 */
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &r[1].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 1);
    CHECK_EQ(w.clock[0], 1);
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &r[0].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 0); /* the first event has no ancestor */

    /* causation: order -> payment -> shipment, across entities */
    bp_receipt ro, rp, rs;
    CHECK_OK(bp_append(s, &ro, "order:1", "shop", BP_KIND(1, 1), "o", 1));
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.causation_id = &ro.event_id;
    CHECK_OK(bp_append_ex(s, &rp, "pay:1", "shop", BP_KIND(1, 2), "p", 1, &o));
    o.causation_id = &rp.event_id;
    CHECK_OK(bp_append_ex(s, &rs, "ship:1", "shop", BP_KIND(1, 3), "s", 1, &o));
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &rs.event_id, BP_WALK_CAUSATION, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 2);
    CHECK(strcmp(w.entity[0], "pay:1") == 0);
    CHECK(strcmp(w.entity[1], "order:1") == 0);
    /* a cause outside this store ends the walk */
    bp_id stranger;
    memset(&stranger, 0x42, sizeof stranger);
    o.causation_id = &stranger;
    bp_receipt rx;
    CHECK_OK(bp_append_ex(s, &rx, "ship:2", "shop", BP_KIND(1, 3), "s", 1, &o));
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &rx.event_id, BP_WALK_CAUSATION, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 0);

    /* bad arguments */
    CHECK_FAILS(bp_walk_ancestors(s, &stranger, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_ENOTFOUND,
                "not found");
    CHECK_FAILS(bp_walk_ancestors(s, &rs.event_id, (bp_walk_mode)7, 0, on_ancestor, &w), BP_EINVAL,
                "mode");
    CHECK_FAILS(bp_walk_ancestors(s, &rs.event_id, BP_WALK_CHAIN, 0, NULL, &w), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_walk_ancestors(NULL, &rs.event_id, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_EINVAL,
                "NULL");

    /* a broken link: the stored hash of clock 3 no longer matches clock 4's prev_hash */
    char seg[1200];
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", dir);
    CHECK_OK(bp_store_sync(s));
    CHECK_EQ(tamper_frame(seg, r[2].event_hash.b, 32), 0);
    memset(&w, 0, sizeof w);
    CHECK_FAILS(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w),
                BP_ECORRUPT, "acct:1");
    CHECK_EQ(w.n, 1); /* clock 4 was fine */
    /* verify: both broken checks (the hash of clock 3, the link from clock 4) counted, the
     * entity told once */
    problems_seen ps = {0};
    bp_verify_report vr;
    CHECK_EQ(bp_store_verify_each(s, &vr, NULL, NULL, on_problem, &ps), BP_ECORRUPT);
    CHECK_EQ(vr.problems, 2);
    CHECK_EQ(ps.n, 1);
    CHECK(strcmp(ps.entity[0], "acct:1") == 0);
    CHECK(strstr(ps.text[0], "event hash mismatch (entity 'acct:1' clock 3)") != NULL);
    bp__store_crash(s);
    t_rmdir(dir);
}

/* --------------------------------------------------------------- snapshot */

typedef struct appender {
    bp_store *s;
    bool stop;  /* atomic */
    uint64_t n; /* atomic */
    int failures;
} appender;

static void *append_loop(void *arg) {
    appender *a = arg;
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_NO_SYNC;
    for (uint64_t n = 0; !__atomic_load_n(&a->stop, __ATOMIC_RELAXED); n++) {
        char entity[32];
        snprintf(entity, sizeof entity, "acct:%llu", (unsigned long long)(n % 7));
        bp_batch_item two[2] = {{entity, "bank", BP_KIND(1, 1), "debit", 5, NULL},
                                {"ledger", "bank", BP_KIND(1, 2), "credit", 6, NULL}};
        bp_status rc =
            n % 5 == 0 ? bp_append_batch(a->s, NULL, two, 2)
                       : bp_append_ex(a->s, NULL, entity, "bank", BP_KIND(1, 1), &n, sizeof n, &o);
        if (rc) a->failures++;
        __atomic_store_n(&a->n, n + 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Every event of the copy is the source's event at the same seq; the copy verifies. */
static void check_copy(bp_store *src, const char *copy, uint64_t seq) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    bp_store *c;
    CHECK_OK(bp_store_open(&c, copy, &o));
    bp_open_report orep;
    bp_store_open_report(c, &orep);
    CHECK_EQ(orep.bytes_cut, 0); /* the point never splits a frame or a batch */
    CHECK_EQ(orep.frames_cut, 0);
    bp_verify_report vr;
    CHECK_OK(bp_store_verify(c, &vr));
    CHECK_EQ(vr.problems, 0);
    CHECK_EQ(vr.events, seq);
    uint8_t a[16], b[16];
    bp_store_uuid(src, a);
    bp_store_uuid(c, b);
    CHECK(memcmp(a, b, 16) == 0);
    bp_region r = BP_REGION_INIT;
    bp_iter *ic, *is;
    CHECK_OK(bp_query(c, &ic, &r, BP_READ_FULL));
    r.to_seq = seq;
    CHECK_OK(bp_query(src, &is, &r, BP_READ_FULL));
    const bp_event *ec, *es;
    uint64_t n = 0;
    bp_status rc;
    while ((rc = bp_iter_next(ic, &ec)) == BP_OK) {
        CHECK_OK(bp_iter_next(is, &es));
        CHECK_EQ(ec->global_seq, es->global_seq);
        CHECK(memcmp(ec->event_hash.b, es->event_hash.b, 32) == 0);
        CHECK_EQ(ec->payload_len, es->payload_len);
        CHECK(memcmp(ec->payload, es->payload, ec->payload_len) == 0);
        n++;
    }
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(bp_iter_next(is, &es), BP_DONE);
    CHECK_EQ(n, seq);
    bp_iter_free(ic);
    bp_iter_free(is);
    CHECK_OK(bp_store_close(c));
}

static void test_snapshot_under_writes(void) {
    const char *dir = t_dir("snap-src");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    t_rmdir(dest);
    bp_open_options oo = BP_OPEN_OPTIONS_INIT;
    oo.no_open_event = true;
    oo.segment_size = 64 * 1024; /* several sealed segments, one active */
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    appender a = {s, false, 0, 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, append_loop, &a), 0);
    while (__atomic_load_n(&a.n, __ATOMIC_RELAXED) < 3000)
        bp_pf_yield();
    bp_snapshot_report rep;
    bp_status rc = bp_store_snapshot(s, dest, &rep);
    __atomic_store_n(&a.stop, true, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    CHECK_OK(rc);
    CHECK_EQ(a.failures, 0);
    CHECK(rep.global_seq >= 3000);
    CHECK(rep.segments > 1);
    CHECK(rep.bytes > 0);
    check_copy(s, dest, rep.global_seq);
    bp_stats st;
    /* the copy is a store of its own: writable, and the source's key registry with it */
    bp_store *c;
    CHECK_OK(bp_store_open(&c, dest, NULL));
    CHECK_OK(bp_append(c, NULL, "acct:1", "bank", BP_KIND(1, 1), "x", 1));
    CHECK_OK(bp_store_close(c));
    /* no partial directory is left beside it */
    char partial[1300];
    snprintf(partial, sizeof partial, "%s.partial-%ld", dest, (long)getpid());
    CHECK_EQ(access(partial, F_OK), -1);
    /* bad input */
    CHECK_FAILS(bp_store_snapshot(s, dest, NULL), BP_EEXIST, "exists");
    CHECK_FAILS(bp_store_snapshot(s, "", NULL), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_store_snapshot(NULL, dest, NULL), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_store_snapshot(s, "/nonexistent-dir/x/y", NULL), BP_EIO, "cannot create");
    char inside[1300]; /* a copy inside the store (or inside one of its folders) is refused */
    snprintf(inside, sizeof inside, "%s/backup", dir);
    CHECK_FAILS(bp_store_snapshot(s, inside, NULL), BP_EINVAL, "inside the store");
    snprintf(inside, sizeof inside, "%s/segments/../segments/backup", dir);
    CHECK_FAILS(bp_store_snapshot(s, inside, NULL), BP_EINVAL, "inside the store");
    CHECK_EQ(access(inside, F_OK), -1);
    CHECK_OK(bp_store_close(s));
    /* a read-only handle snapshots too */
    oo.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    t_rmdir(dest);
    CHECK_OK(bp_store_snapshot(s, dest, &rep));
    CHECK_OK(bp_store_stats(s, &st));
    CHECK_EQ(rep.global_seq, st.events);
    check_copy(s, dest, rep.global_seq);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dest);
    t_rmdir(dir);
}

/* Every append that returned before bp_store_snapshot is in the copy: a no-sync append
 * written behind a durable one still in its (slow) fdatasync is not published when it
 * returns; the snapshot's initial sync publishes it before the point is taken. */
typedef struct durable_arg {
    bp_store *s;
    bp_status rc;
} durable_arg;

static void *durable_append(void *arg) {
    durable_arg *d = arg;
    d->rc = bp_append(d->s, NULL, "acct:d", "bank", BP_KIND(1, 1), "d", 1);
    return NULL;
}

static void test_snapshot_includes_returned_appends(void) {
    const char *dir = t_dir("snap-returned");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    t_rmdir(dest);
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &f});
    CHECK_OK(bp_append(s, NULL, "acct:0", "bank", BP_KIND(1, 1), "0", 1));
    pthread_mutex_lock(&f.mu);
    f.sync_delay_us = 300000;
    uint64_t syncs0 = f.syncs;
    pthread_mutex_unlock(&f.mu);
    durable_arg d = {s, BP_OK};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, durable_append, &d), 0);
    for (;;) { /* until the durable append is in its fdatasync */
        pthread_mutex_lock(&f.mu);
        bool in = f.syncs > syncs0;
        pthread_mutex_unlock(&f.mu);
        if (in) break;
        bp_pf_yield();
    }
    bp_append_options ns = BP_APPEND_OPTIONS_INIT;
    ns.durability = BP_NO_SYNC;
    bp_receipt r;
    CHECK_OK(bp_append_ex(s, &r, "acct:n", "bank", BP_KIND(1, 1), "n", 1, &ns));
    bp_snapshot_report rep;
    CHECK_OK(bp_store_snapshot(s, dest, &rep));
    pthread_join(th, NULL);
    CHECK_OK(d.rc);
    CHECK(rep.global_seq >= r.global_seq); /* the returned append is in the copy */
    check_copy(s, dest, rep.global_seq);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dest);
    t_rmdir(dir);
}

/* A failed write or fsync of the copy: an error, no dest, no partial dir, and the store
 * goes on (a failed backup does not fail-stop it). Every I/O step of the copy is hit. */
static void test_snapshot_faults(void) {
    const char *dir = t_dir("snap-fault");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts oo = {.segment_size = 16 * 1024, .fault = &f, .durability = BP_NO_SYNC};
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &oo));
    for (int i = 0; i < 400; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    CHECK_OK(bp_store_sync(s));
    /* how many writes, syncs and renames a whole snapshot makes */
    uint64_t w0 = f.writes, s0 = f.syncs, r0 = f.renames;
    t_rmdir(dest);
    CHECK_OK(bp_store_snapshot(s, dest, NULL));
    uint64_t writes = f.writes - w0, syncs = f.syncs - s0, renames = f.renames - r0;
    CHECK(writes >= 4 && syncs >= 4 && renames >= 2);
    t_rmdir(dest);
    char partial[1300];
    snprintf(partial, sizeof partial, "%s.partial-%ld", dest, (long)getpid());
    int failed = 0;
    for (int kind = 0; kind < 3; kind++) {
        uint64_t steps = kind == 0 ? writes : kind == 1 ? syncs : renames;
        for (uint64_t k = 1; k <= steps; k++) {
            f.fail_write_at = kind == 0 ? f.writes + k : 0;
            f.fail_sync_at = kind == 1 ? f.syncs + k : 0;
            f.fail_rename_at = kind == 2 ? f.renames + k : 0;
            bp_status rc = bp_store_snapshot(s, dest, NULL);
            f.fail_write_at = f.fail_sync_at = f.fail_rename_at = 0;
            bool last_sync = kind == 1 && k == steps; /* the parent directory's, after rename */
            if (last_sync) {
                CHECK_EQ(rc, BP_EIO); /* reported; the copy is whole */
                check_copy(s, dest, 400);
                t_rmdir(dest);
            } else {
                CHECK_EQ(rc, BP_EIO);
                CHECK(strstr(bp_last_error(), "snapshot") != NULL);
                CHECK_EQ(access(dest, F_OK), -1);
            }
            CHECK_EQ(access(partial, F_OK), -1);
            failed++;
            bp_stats st; /* the store is not fail-stopped */
            CHECK_OK(bp_store_stats(s, &st));
            CHECK(!st.failed);
        }
    }
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    fprintf(stderr, "  snapshot faults: %d failing steps, each left no partial copy\n", failed);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* SIGKILL a process in the middle of snapshots (while it appends): each DEST that exists
 * afterwards is a whole store that verifies. */
static void test_snapshot_kill9(void) {
    const char *dir = t_dir("snap-kill");
    char base[1200];
    snprintf(base, sizeof base, "%s-copies", dir);
    t_rmdir(base);
    mkdir(base, 0755);
    const char *env = getenv("BP_SNAPSHOT_KILLS");
    int kills = env ? atoi(env) : 20, whole = 0;
    srand(7);
    for (int k = 0; k < kills; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            bp_open_options oo = BP_OPEN_OPTIONS_INIT;
            oo.segment_size = 32 * 1024;
            bp_store *s;
            if (bp_store_open(&s, dir, &oo)) {
                fprintf(stderr, "open: %s\n", bp_last_error());
                _exit(3);
            }
            appender a = {s, false, 0, 0};
            pthread_t th;
            if (pthread_create(&th, NULL, append_loop, &a)) _exit(4);
            for (int i = 0;; i++) {
                char dest[1400];
                snprintf(dest, sizeof dest, "%s/run%d-%d", base, k, i);
                if (bp_store_snapshot(s, dest, NULL)) {
                    fprintf(stderr, "snapshot: %s\n", bp_last_error());
                    _exit(5);
                }
            }
        }
        struct timespec ts = {0, (long)(20000 + rand() % 80000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        CHECK(WIFSIGNALED(st)); /* it was still snapshotting */
    }
    char **names;
    size_t n;
    CHECK_EQ(bp_pf_list(base, "", &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", base, names[i]);
        if (names[i][0] == '.' || strstr(names[i], ".partial-"))
            continue; /* the unfinished copy: never renamed */
        bp_open_options o = BP_OPEN_OPTIONS_INIT;
        o.read_only = true;
        bp_store *c;
        CHECK_OK(bp_store_open(&c, p, &o));
        bp_open_report orep;
        bp_store_open_report(c, &orep);
        CHECK_EQ(orep.bytes_cut, 0);
        CHECK_EQ(orep.frames_cut, 0);
        bp_verify_report vr;
        CHECK_OK(bp_store_verify(c, &vr));
        CHECK_OK(bp_store_close(c));
        whole++;
    }
    bp_pf_list_free(names, n);
    CHECK(whole > 0);
    /* the source survived its kills too */
    bp_store *s = t_open(dir, NULL);
    bp_verify_report vr;
    CHECK_OK(bp_store_verify(s, &vr));
    CHECK_OK(bp_store_close(s));
    fprintf(stderr, "  snapshot crash test: %d SIGKILLs, %d finished copies all verify\n", kills,
            whole);
    t_rmdir(base);
    t_rmdir(dir);
}

/* ---------------------------------------------------------- export/import */

/* Import text (NDJSON) into s line by line; rc of the first failure or of the end. */
static bp_status import_text(bp_store *s, const char *text, bp_import_report *rep) {
    bp_importer *imp;
    bp_status rc = bp_import_begin(s, &imp);
    if (rc) return rc;
    for (const char *p = text; *p && !rc;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        rc = bp_import_line(imp, p, len);
        p += len;
    }
    char msg[700];
    snprintf(msg, sizeof msg, "%s", bp_last_error());
    bp_status erc = bp_import_end(imp, rep);
    if (rc) {
        bp_set_error(rc, "%s", msg);
        return rc;
    }
    return erc;
}

/* A source with every kind of event: batches, causation, idempotency keys, schema flags,
 * binary payloads of every length 0..40, several segments. */
static void fill_source(bp_store *s) {
    uint8_t bin[40];
    for (int i = 0; i < 40; i++)
        bin[i] = (uint8_t)(i * 37 + 255);
    bp_receipt r;
    for (int i = 0; i <= 40; i++) {
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        char key[32];
        snprintf(key, sizeof key, "k-%d", i);
        o.idempotency_key = i % 3 ? NULL : key;
        o.causation_id = i ? &r.event_id : NULL;
        o.schema_version = (uint8_t)(i % 4);
        bp_append_ex(s, &r, i % 2 ? "acct:\xc3\xa9t\xc3\xa9" : "acct:\"quoted\"\\", "bank",
                     BP_KIND(1, 1 + i % 5), bin, (size_t)i, &o);
        if (i % 10 == 5) {
            bp_batch_item two[3] = {{"order:1", "shop", BP_KIND(2, 1), "a", 1, NULL},
                                    {"stock:1", "shop", BP_KIND(2, 2), bin, 40, NULL},
                                    {"order:1", "shop", BP_KIND(2, 3), NULL, 0, NULL}};
            bp_append_batch(s, NULL, two, 3);
        }
    }
}

static void test_export_import_round_trip(void) {
    const char *src = t_dir("export-src"), *dst = t_dir("export-dst");
    bp_store *s;
    CHECK_OK(bp_store_open(&s, src, NULL)); /* its SYSTEM_OPEN_COMPLETED event travels too */
    CHECK_OK(bp_store_close(s));
    s = t_open(src, &(t_open_opts){.segment_size = 8192});
    CHECK(s != NULL);
    fill_source(s);
    t_membuf a = {0}, b = {0};
    CHECK_OK(bp_export(s, 0, t_to_mem, &a, NULL, NULL));
    bp_stats st;
    CHECK_OK(bp_store_stats(s, &st));
    CHECK(st.segments > 1);
    bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK(d != NULL);
    bp_import_report rep;
    CHECK_OK(import_text(d, a.p, &rep));
    CHECK_EQ(rep.imported, st.events);
    CHECK_EQ(rep.lines, st.events);
    CHECK_OK(bp_export(d, 0, t_to_mem, &b, NULL, NULL));
    CHECK_EQ(a.n, b.n);
    CHECK(memcmp(a.p, b.p, a.n) == 0); /* byte-identical */
    bp_verify_report vr;
    CHECK_OK(bp_store_verify(d, &vr));
    /* the imported store is a store: appends chain on, ids and hlc move forward */
    bp_receipt r1, r2;
    CHECK_OK(bp_append(s, &r1, "order:1", "shop", BP_KIND(2, 1), "z", 1));
    CHECK_OK(bp_append(d, &r2, "order:1", "shop", BP_KIND(2, 1), "z", 1));
    CHECK_EQ(r1.clock, r2.clock);
    CHECK(memcmp(r1.prev_hash.b, r2.prev_hash.b, 32) == 0);
    CHECK(r2.hlc > 0);
    /* idempotency keys came along */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "k-3";
    bp_receipt rr;
    CHECK_OK(bp_append_ex(d, &rr, "acct:\xc3\xa9t\xc3\xa9", "bank", BP_KIND(1, 1), "q", 1, &o));
    CHECK(rr.replayed);
    /* after_seq: the tail only */
    t_membuf c = {0};
    CHECK_OK(bp_export(s, st.events - 2, t_to_mem, &c, NULL, NULL));
    CHECK(strncmp(c.p, "{\"global_seq\":", 14) == 0);
    CHECK_EQ(strtoull(c.p + 14, NULL, 10), st.events - 1);
    CHECK_OK(bp_store_close(s));
    CHECK_OK(bp_store_close(d));
    /* an interrupted import runs again: what is there is skipped */
    t_rmdir(dst);
    d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    char *half = strdup(a.p);
    char *cut = half;
    for (int i = 0; i < 20; i++)
        cut = strchr(cut, '\n') + 1;
    *cut = '\0';
    CHECK_OK(import_text(d, half, &rep));
    CHECK_EQ(rep.imported, 20);
    CHECK_OK(import_text(d, a.p, &rep));
    CHECK_EQ(rep.skipped, 20);
    CHECK_EQ(rep.imported, st.events - 20);
    free(b.p);
    b = (t_membuf){0};
    CHECK_OK(bp_export(d, 0, t_to_mem, &b, NULL, NULL));
    CHECK(b.n == a.n && memcmp(a.p, b.p, a.n) == 0);
    CHECK_OK(bp_store_close(d));
    free(half);
    free(a.p);
    free(b.p);
    free(c.p);
    t_rmdir(src);
    t_rmdir(dst);
}

/* Replace the first occurrence of from in line number n (1-based) of text: a new string. */
static char *edit_line(const char *text, int n, const char *from, const char *to) {
    const char *p = text;
    for (int i = 1; i < n; i++)
        p = strchr(p, '\n') + 1;
    const char *at = strstr(p, from);
    if (!at) return NULL;
    size_t pre = (size_t)(at - text);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

/* Drop line n. */
static char *drop_line(const char *text, int n) {
    const char *p = text;
    for (int i = 1; i < n; i++)
        p = strchr(p, '\n') + 1;
    const char *end = strchr(p, '\n') + 1;
    char *out = malloc(strlen(text) + 1);
    memcpy(out, text, (size_t)(p - text));
    strcpy(out + (p - text), end);
    return out;
}

/* Every bad line is refused naming its line; the lines before it are imported (a batch
 * only whole). */
static void test_import_refusals(void) {
    const char *src = t_dir("import-src"), *dst = t_dir("import-dst");
    bp_store *s = t_open(src, &(t_open_opts){.segment_size = 8192});
    CHECK(s != NULL);
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "abc", 3));
    bp_batch_item two[2] = {{"e", "x", BP_KIND(1, 2), "b1", 2, NULL},
                            {"f", "x", BP_KIND(1, 2), "b2", 2, NULL}};
    CHECK_OK(bp_append_batch(s, NULL, two, 2));                      /* lines 6 and 7 */
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "abc", 3)); /* line 8 */
    t_membuf a = {0};
    CHECK_OK(bp_export(s, 0, t_to_mem, &a, NULL, NULL));
    CHECK_OK(bp_store_close(s));
    struct {
        char *text;
        bp_status rc;
        const char *needle;
        uint64_t kept; /* events imported before the refusal */
    } cases[] = {
        {edit_line(a.p, 3, "\"payload\":\"YWJj\"", "\"payload\":\"YWJk\""), BP_ECORRUPT,
         "line 3: event_hash does not match", 2},
        {edit_line(a.p, 4, "\"clock\":4", "\"clock\":9"), BP_ECORRUPT, "line 4: event_hash", 3},
        {drop_line(a.p, 3), BP_ECONFLICT, "line 3: global_seq 4, but the store's next is 3", 2},
        {edit_line(a.p, 2, "{", "["), BP_EINVAL, "line 2: not JSON", 1},
        {edit_line(a.p, 2, "\"flags\":0", "\"flags\":0,\"extra\":1"), BP_EINVAL,
         "line 2: unknown field 'extra'", 1},
        {edit_line(a.p, 2, "\"flags\":0,", ""), BP_EINVAL, "line 2: field 'flags' is missing", 1},
        {edit_line(a.p, 2, "\"kind\":4097", "\"kind\":\"4097\""), BP_EINVAL,
         "line 2: field 'kind' is of the wrong type", 1},
        {edit_line(a.p, 2, "\"kind\":4097", "\"kind\":70000"), BP_EINVAL, "line 2: field 'kind'",
         1},
        {edit_line(a.p, 2, "\"payload\":\"YWJj\"", "\"payload\":\"YWJ\""), BP_EINVAL,
         "line 2: field 'payload' is not base64", 1},
        {edit_line(a.p, 2, "\"payload\":\"YWJj\"", "\"payload\":\"YR==\""), BP_EINVAL, "not base64",
         1},
        {edit_line(a.p, 2, "\"event_hash\":\"", "\"event_hash\":\"X"), BP_EINVAL,
         "line 2: event_hash and prev_hash", 1},
        {edit_line(a.p, 2, "\"entity\":\"e\"", "\"entity\":\"\""), BP_EINVAL, "line 2:", 1},
        {drop_line(a.p, 7), BP_EINVAL, "line 7: batch 6 (from line 6) has 1 of its 2 events", 5},
        {drop_line(a.p, 6), BP_EINVAL, "line 6: batch 6 starts at index 1, not 0", 5},
        {edit_line(a.p, 7, "\"count\":2", "\"count\":3"), BP_ECORRUPT, "line 7: event_hash", 5},
        {edit_line(a.p, 7, "\"flags\":0", "\"flags\":-1"), BP_EINVAL, "line 7: field 'flags'", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cases[i].text != NULL);
        t_rmdir(dst);
        bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
        CHECK(d != NULL);
        bp_import_report rep;
        bp_status rc = import_text(d, cases[i].text, &rep);
        if (rc != cases[i].rc || !strstr(bp_last_error(), cases[i].needle))
            fprintf(stderr, "  case %zu: %d %s\n", i, rc, bp_last_error());
        CHECK_EQ(rc, cases[i].rc);
        CHECK(strstr(bp_last_error(), cases[i].needle) != NULL);
        bp_stats st;
        CHECK_OK(bp_store_stats(d, &st));
        CHECK_EQ(st.events, cases[i].kept);
        bp_verify_report vr;
        CHECK_OK(bp_store_verify(d, &vr));
        CHECK_OK(bp_store_close(d));
        free(cases[i].text);
    }
    /* a batch cut at the end of the input */
    char *cut = strdup(a.p);
    char *line7 = cut;
    for (int i = 1; i < 7; i++)
        line7 = strchr(line7, '\n') + 1;
    *line7 = '\0';
    t_rmdir(dst);
    bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK_FAILS(import_text(d, cut, NULL), BP_EINVAL, "end of input: batch 6 (from line 6)");
    bp_stats st;
    CHECK_OK(bp_store_stats(d, &st));
    CHECK_EQ(st.events, 5);
    free(cut);
    /* a store with events of its own */
    CHECK_OK(bp_store_close(d));
    t_rmdir(dst);
    d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK_OK(bp_append(d, NULL, "mine", "x", BP_KIND(1, 1), "m", 1));
    CHECK_FAILS(import_text(d, a.p, NULL), BP_ECONFLICT, "line 1: this store holds another event");
    bp_importer *imp;
    CHECK_OK(bp_import_begin(d, &imp));
    CHECK_FAILS(bp_import_line(imp, "", 0), BP_EINVAL, "line 1: empty");
    CHECK_FAILS(bp_import_line(imp, "{}", 2), BP_EINVAL, "earlier error: line 1: empty");
    CHECK_FAILS(bp_import_end(imp, NULL), BP_EINVAL, "line 1: empty");
    CHECK_FAILS(bp_import_line(NULL, "x", 1), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_import_begin(NULL, &imp), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_export(NULL, 0, t_to_mem, NULL, NULL, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(d));
    bp_open_options ro = BP_OPEN_OPTIONS_INIT;
    ro.read_only = true;
    CHECK_OK(bp_store_open(&d, dst, &ro));
    CHECK_FAILS(bp_import_begin(d, &imp), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(d));
    free(a.p);
    t_rmdir(src);
    t_rmdir(dst);
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
    RUN(test_diagnostics);
    RUN(test_outbox);
    RUN(test_walk_ancestors);
    RUN(test_verify_checkpoint);
    RUN(test_export_import_round_trip);
    RUN(test_import_refusals);
    RUN(test_commit_imported_checks);
    RUN(test_snapshot_under_writes);
    RUN(test_snapshot_includes_returned_appends);
    RUN(test_snapshot_faults);
    RUN(test_snapshot_kill9);
    T_DONE();
}
