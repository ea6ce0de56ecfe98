/* Delivery: cursors (ordered, lossless, batches, blocking waits, resume) and lossy
 * subscriptions (bounded queues, drop counting, catch-up with a cursor), also with
 * concurrent writers (batpak/deliver.h). */
#include "t.h"
#include "format/format.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* The stores of these tests: appends synced at close only (BP_NO_SYNC). */
static const t_open_opts NO_SYNC = {.durability = {.mode = BP_DUR_NONE}};

/* Payload i: 4 bytes, the number itself. */
static bp_status put(bp_store *s, const char *entity, const char *scope, uint32_t i) {
    return bp_append(s, NULL, entity, scope, BP_KIND(1, 1 + i % 3), &i, sizeof i);
}

static uint32_t payload_of(const bp_event *ev) {
    uint32_t v = UINT32_MAX;
    if (ev->payload_len == 4) memcpy(&v, ev->payload, 4);
    return v;
}

static void test_cursor_batches_and_resume(void) {
    const char *dir = t_dir("deliver-cursor");
    bp_store *s = t_open(dir, &NO_SYNC);
    const char *ents[] = {"acct:1", "acct:2", "other:1"};
    for (uint32_t i = 0; i < 90; i++)
        CHECK_OK(put(s, ents[i % 3], "bank", i));
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &c, &r, 0));
    const bp_event *evs[7];
    size_t n, total = 0;
    uint64_t last = 0;
    bp_status rc;
    while ((rc = bp_cursor_next(c, evs, 7, &n, 0)) == BP_OK) {
        CHECK(n >= 1 && n <= 7);
        for (size_t k = 0; k < n; k++) { /* every pointer of the batch is still valid */
            CHECK(evs[k]->global_seq > last);
            last = evs[k]->global_seq;
            CHECK(strncmp(evs[k]->entity, "acct:", 5) == 0);
            CHECK_EQ(payload_of(evs[k]), evs[k]->global_seq - 1);
        }
        total += n;
        CHECK_EQ(bp_cursor_position(c), last);
    }
    CHECK_EQ(rc, BP_ETIMEDOUT); /* caught up: nothing new, not finished */
    CHECK_EQ(n, 0);
    CHECK_EQ(total, 60);
    /* new events show up at the next call */
    CHECK_OK(put(s, "acct:9", "bank", 90));
    CHECK_OK(put(s, "other:9", "bank", 91));
    CHECK_OK(bp_cursor_next(c, evs, 7, &n, 0));
    CHECK_EQ(n, 1);
    CHECK_EQ(evs[0]->global_seq, 91);
    CHECK(strcmp(evs[0]->entity, "acct:9") == 0);
    bp_cursor_free(c);
    /* resume after a position; to_seq ends the cursor */
    r.to_seq = 80;
    CHECK_OK(bp_cursor_open(s, &c, &r, 50));
    total = 0;
    while (bp_cursor_next(c, evs, 4, &n, 0) == BP_OK) {
        CHECK(evs[0]->global_seq > 50);
        total += n;
    }
    CHECK_EQ(total, 20);                                    /* seqs 51..80 of acct:* */
    CHECK_EQ(bp_cursor_next(c, evs, 4, &n, 1000), BP_DONE); /* finished: no wait */
    bp_cursor_free(c);
    /* gap observations: events handed out more than 1 ms after their commit */
    r.to_seq = 0;
    CHECK_OK(bp_cursor_open(s, &c, &r, 0));
    bp_cursor_observe_gaps(c, 1);
    struct timespec pause = {0, 10000000};
    nanosleep(&pause, NULL);
    CHECK_OK(bp_cursor_next(c, evs, 5, &n, 0));
    bp_gap gaps[8];
    CHECK_EQ(bp_cursor_take_gaps(c, gaps, 8), 5);
    CHECK_EQ(gaps[0].global_seq, evs[0]->global_seq);
    CHECK(gaps[0].lag_ms >= 10);
    CHECK_EQ(bp_cursor_take_gaps(c, gaps, 8), 0);
    bp_cursor_observe_gaps(c, 0);
    CHECK_OK(bp_cursor_next(c, evs, 5, &n, 0));
    CHECK_EQ(bp_cursor_take_gaps(c, gaps, 8), 0);
    bp_cursor_free(c);
    /* bad arguments */
    CHECK_OK(bp_cursor_open(s, &c, &r, 0));
    CHECK_FAILS(bp_cursor_next(c, evs, 0, &n, 0), BP_EINVAL, "max");
    CHECK_FAILS(bp_cursor_next(c, evs, 5000, &n, 0), BP_EINVAL, "max");
    bp_cursor_free(c);
    r.category = 99;
    CHECK_FAILS(bp_cursor_open(s, &c, &r, 0), BP_EINVAL, "category");
    CHECK(c == NULL);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

typedef struct later {
    bp_store *s;
    int delay_ms;
    int count;
} later;

static void *append_later(void *arg) {
    later *l = arg;
    struct timespec ts = {0, (long)l->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    for (int i = 0; i < l->count; i++)
        if (put(l->s, "acct:late", "bank", 1000u + (uint32_t)i)) return (void *)1;
    return NULL;
}

static void test_cursor_waits(void) {
    const char *dir = t_dir("deliver-wait");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_region r = BP_REGION_INIT;
    r.entity = "acct:late";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &c, &r, 0));
    const bp_event *evs[4];
    size_t n;
    CHECK_FAILS(bp_cursor_next(c, evs, 4, &n, 20), BP_ETIMEDOUT,
                "no new event"); /* nothing comes */
    later l = {s, 50, 3};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, append_later, &l), 0);
    size_t got = 0;
    while (got < 3) { /* woken by the appends, long before the timeout */
        CHECK_OK(bp_cursor_next(c, evs, 4, &n, 30000));
        got += n;
    }
    CHECK_EQ(got, 3);
    void *res;
    pthread_join(th, &res);
    CHECK(res == NULL);
    CHECK_EQ(payload_of(evs[n - 1]), 1002);
    bp_cursor_free(c);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------- concurrent writers, one reader */

#define WRITERS 3
#define PER_WRITER 600

typedef struct writer {
    bp_store *s;
    int id;
    uint64_t seqs[PER_WRITER];
    int n;
    bp_status rc;
} writer;

static void *write_main(void *arg) {
    writer *w = arg;
    char ent[32];
    snprintf(ent, sizeof ent, "acct:w%d", w->id);
    for (int i = 0; i < PER_WRITER && !w->rc;) {
        if (i % 50 == 10) { /* now and then a batch of 5 */
            bp_batch_item it[5];
            bp_receipt r[5];
            t_receipts(r, sizeof r / sizeof r[0]);
            uint32_t v[5];
            for (int k = 0; k < 5; k++) {
                v[k] = (uint32_t)(w->id * 100000 + i + k);
                it[k] = (bp_batch_item){ent, "bank", BP_KIND(1, 1), &v[k], 4, NULL};
            }
            if ((w->rc = bp_append_batch(w->s, r, it, 5))) break;
            for (int k = 0; k < 5; k++)
                w->seqs[w->n++] = r[k].global_seq;
            i += 5;
        } else {
            bp_receipt r = BP_RECEIPT_INIT;
            uint32_t v = (uint32_t)(w->id * 100000 + i);
            if ((w->rc = bp_append(w->s, &r, ent, "bank", BP_KIND(1, 1), &v, 4))) break;
            w->seqs[w->n++] = r.global_seq;
            i++;
        }
    }
    return NULL;
}

static void test_cursor_under_concurrent_writers(void) {
    const char *dir = t_dir("deliver-race");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:w";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &c, &r, 0));
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &sub, &r, 64));
    writer ws[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        ws[i] = (writer){.s = s, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, write_main, &ws[i]), 0);
    }
    uint8_t *seen = calloc(WRITERS * PER_WRITER + 1, 1);
    CHECK(seen);
    size_t got = 0;
    uint64_t last = 0, notices = 0, last_notice = 0;
    const bp_event *evs[16];
    size_t n;
    while (got < WRITERS * PER_WRITER) {
        bp_status rc = bp_cursor_next(c, evs, 16, &n, 30000);
        CHECK_OK(rc);
        for (size_t k = 0; k < n; k++) {
            CHECK(evs[k]->global_seq > last); /* strictly in global order */
            last = evs[k]->global_seq;
            CHECK(last <= WRITERS * PER_WRITER);
            CHECK(!seen[last]);
            seen[last] = 1;
        }
        got += n;
        bp_notice nt = BP_NOTICE_INIT; /* drain the doorbell as we go: notices come in order too */
        while (bp_subscription_next(sub, &nt, 0) == BP_OK) {
            CHECK(nt.global_seq > last_notice);
            last_notice = nt.global_seq;
            notices++;
        }
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        CHECK_OK(ws[i].rc);
        for (int k = 0; k < ws[i].n; k++) /* every receipt was delivered */
            CHECK(seen[ws[i].seqs[k]]);
    }
    bp_notice nt = BP_NOTICE_INIT;
    while (bp_subscription_next(sub, &nt, 0) == BP_OK)
        notices++;
    bp_subscription_stats st = BP_SUBSCRIPTION_STATS_INIT;
    bp_subscription_stats_get(sub, &st);
    CHECK_EQ(st.delivered, notices);
    CHECK_EQ(st.delivered + st.dropped, WRITERS * PER_WRITER); /* each one counted once */
    CHECK_EQ(st.depth, 0);
    free(seen);
    bp_unsubscribe(sub);
    bp_cursor_free(c);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------- subscriptions */

static void test_lossy_subscription(void) {
    const char *dir = t_dir("deliver-lossy");
    bp_store *s = t_open(dir, &NO_SYNC);
    CHECK_OK(put(s, "acct:1", "bank", 0)); /* before the subscription: never notified */
    bp_region r = BP_REGION_INIT;
    r.scope = "bank";
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &sub, &r, 10));
    for (uint32_t i = 1; i <= 30; i++)
        CHECK_OK(put(s, i % 6 == 0 ? "acct:2" : "acct:1", i % 6 == 0 ? "misc" : "bank", i));
    /* 25 matching events (every 6th is in scope misc); the queue holds the first 10 */
    bp_notice nt = BP_NOTICE_INIT;
    uint64_t seqs[10];
    for (int k = 0; k < 10; k++) {
        CHECK_OK(bp_subscription_next(sub, &nt, 0));
        seqs[k] = nt.global_seq;
        CHECK(strcmp(nt.scope, "bank") == 0);
        CHECK(strcmp(nt.entity, "acct:1") == 0);
        bp_event *ev; /* the notice says where the event is */
        CHECK_OK(bp_get(s, &ev, &nt.event_id));
        CHECK_EQ(ev->global_seq, nt.global_seq);
        CHECK_EQ(ev->clock, nt.clock);
        CHECK_EQ(ev->kind, nt.kind);
        CHECK_EQ(ev->hlc, nt.hlc);
        bp_event_free(ev);
    }
    CHECK_EQ(seqs[0], 2);
    CHECK_FAILS(bp_subscription_next(sub, &nt, 0), BP_ETIMEDOUT, "no notice");
    bp_subscription_stats st = BP_SUBSCRIPTION_STATS_INIT;
    bp_subscription_stats_get(sub, &st);
    CHECK_EQ(st.delivered, 10);
    CHECK_EQ(st.dropped, 15);
    CHECK_EQ(st.capacity, 10);
    uint64_t missed, from;
    bp_subscription_missed(sub, &missed, &from);
    CHECK_EQ(missed, 15);
    CHECK_EQ(seqs[9], 12); /* 2..6, 8..12: seq 7 (i = 6) is in scope misc */
    CHECK_EQ(from, 14);    /* the first one dropped: 13 is misc */
    bp_subscription_missed(sub, &missed, &from);
    CHECK_EQ(missed, 0);
    CHECK_EQ(from, 0);
    /* catch up from there with a cursor: exactly the dropped ones */
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &c, &r, seqs[9]));
    const bp_event *evs[32];
    size_t n;
    CHECK_OK(bp_cursor_next(c, evs, 32, &n, 0));
    CHECK_EQ(n, 15);
    bp_cursor_free(c);
    /* the queue has room again */
    CHECK_OK(put(s, "acct:1", "bank", 99));
    CHECK_OK(bp_subscription_next(sub, &nt, 0));
    CHECK_EQ(nt.global_seq, 32);
    bp_unsubscribe(sub);
    /* bad arguments */
    CHECK_FAILS(bp_subscribe_lossy(s, &sub, &r, 0), BP_EINVAL, "capacity");
    CHECK_FAILS(bp_subscribe_lossy(s, &sub, &r, BP_SUBSCRIPTION_MAX + 1), BP_EINVAL, "capacity");
    r.struct_size = 7;
    CHECK_FAILS(bp_subscribe_lossy(s, &sub, &r, 4), BP_EINVAL, "struct_size");
    CHECK(sub == NULL);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_writers_never_wait_for_subscribers(void) {
    const char *dir = t_dir("deliver-full");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_region r = BP_REGION_INIT;
    bp_subscription *stuck, *live;
    CHECK_OK(bp_subscribe_lossy(s, &stuck, &r, 1)); /* never read */
    CHECK_OK(bp_subscribe_lossy(s, &live, &r, 4));
    later l = {s, 30, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, append_later, &l), 0);
    bp_notice nt = BP_NOTICE_INIT;
    CHECK_OK(bp_subscription_next(live, &nt, 30000)); /* woken by the append */
    pthread_join(th, NULL);
    for (uint32_t i = 0; i < 5000; i++) /* would hang if a full queue made writers wait */
        CHECK_OK(put(s, "acct:1", "bank", i));
    bp_subscription_stats st = BP_SUBSCRIPTION_STATS_INIT;
    bp_subscription_stats_get(stuck, &st);
    CHECK_EQ(st.depth, 1);
    CHECK_EQ(st.dropped, 5000);
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT; /* the same, store-wide */
    CHECK_OK(bp_delivery_stats_get(s, &ds));
    CHECK_EQ(ds.subscriptions, 2);
    CHECK_EQ(ds.queued, 1 + 4);
    CHECK_EQ(ds.dropped, 5000 + 4996);
    CHECK_EQ(ds.workers, 0);
    bp_unsubscribe(stuck);
    bp_unsubscribe(live);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------------ workers */

typedef struct handler {
    pthread_mutex_t mu;
    uint64_t seqs[4096];
    uint32_t attempts[4096];
    char keys[4096][128];
    size_t n;
    uint64_t fail_seq;   /* fail this event ... */
    uint32_t fail_times; /* ... this many times (UINT32_MAX: always) */
    int poison_calls;
    uint64_t poison_seq;
} handler;

static bp_status on_event(void *ctx, const bp_delivery *d) {
    handler *h = ctx;
    pthread_mutex_lock(&h->mu);
    bool fail = d->ev->global_seq == h->fail_seq && d->attempt <= h->fail_times;
    if (h->n < 4096) {
        h->seqs[h->n] = d->ev->global_seq;
        h->attempts[h->n] = d->attempt;
        snprintf(h->keys[h->n], sizeof h->keys[0], "%s", d->idem_key);
        h->n++;
    }
    pthread_mutex_unlock(&h->mu);
    return fail ? bp_set_error(BP_EIO, "mail server down") : BP_OK;
}

static void on_poison(void *ctx, const bp_event *ev, bp_status rc, uint32_t attempts) {
    handler *h = ctx;
    (void)rc;
    (void)attempts;
    h->poison_calls++;
    h->poison_seq = ev->global_seq;
}

static bool wait_handled(bp_worker *w, uint64_t position) {
    for (int i = 0; i < 6000; i++) {
        bp_worker_stats st = BP_WORKER_STATS_INIT;
        bp_worker_stats_get(w, &st);
        if (st.position >= position || !st.running) return st.position >= position;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_worker_in_order_with_retries(void) {
    const char *dir = t_dir("deliver-worker");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < 40; i++)
        CHECK_OK(put(s, i % 2 ? "acct:1" : "other:1", "bank", i));
    bp_region r = BP_REGION_INIT;
    r.entity = "acct:1";
    static handler h = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_seq = 6, .fail_times = 2};
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.backoff_ms = 1;
    cfg.batch = 3;
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &h, &cfg));
    for (uint32_t i = 40; i < 80; i++) /* while it runs */
        CHECK_OK(put(s, i % 2 ? "acct:1" : "other:1", "bank", i));
    CHECK(wait_handled(w, 80));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_EQ(st.handled, 40);
    CHECK_EQ(st.retries, 2);
    CHECK_EQ(st.lag_events, 0);
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT;
    CHECK_OK(bp_delivery_stats_get(s, &ds));
    CHECK_EQ(ds.workers, 1);
    CHECK_EQ(ds.lag_events_max, 0);
    CHECK_OK(bp_worker_stop(w));
    CHECK_OK(bp_delivery_stats_get(s, &ds));
    CHECK_EQ(ds.workers, 0);
    /* in order, every event, the failing one three times with attempts 1, 2, 3 and the
     * same idempotency key */
    CHECK_EQ(h.n, 42);
    uint64_t expect = 2;
    for (size_t i = 0; i < h.n; i++) {
        if (h.seqs[i] == 6 && h.attempts[i] < 3) {
            CHECK_EQ(h.seqs[i + 1], 6);
            CHECK_EQ(h.attempts[i + 1], h.attempts[i] + 1);
            CHECK(strcmp(h.keys[i], h.keys[i + 1]) == 0);
            continue;
        }
        CHECK_EQ(h.seqs[i], expect);
        CHECK_EQ(h.attempts[i], expect == 6 ? 3 : 1);
        CHECK(strncmp(h.keys[i], "local:", 6) == 0);
        expect += 2;
    }
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Fails every delivery while *block is set (retried, never poison): a worker that is
 * stuck on its first event. */
static bp_status on_event_blocked(void *ctx, const bp_delivery *d) {
    (void)d;
    return __atomic_load_n((int *)ctx, __ATOMIC_SEQ_CST) ? bp_set_error(BP_EIO, "blocked") : BP_OK;
}

static bp_status count_event(void *ctx, const bp_delivery *d) {
    (void)d;
    __atomic_fetch_add((uint64_t *)ctx, 1, __ATOMIC_RELAXED);
    return BP_OK;
}

/* A worker's lag counts what it has not passed: a worker filtered by kind (or entity) that
 * has caught up reports 0 even when the newest events are not its own, and bp_worker_wait
 * returns once every event of its region up to a seq is handled, events outside it and
 * holes left by a compaction counting as passed; BP_ETIMEDOUT at its deadline. */
static void test_worker_lag_and_wait(void) {
    const char *dir = t_dir("deliver-lag");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    o.segment_size = 4096; /* several sealed segments for the compaction */
    bp_store *s = NULL;
    CHECK_OK(bp_store_open(&s, dir, &o));
    for (uint32_t i = 0; i < 300; i++)
        CHECK_OK(put(s, i % 2 ? "acct:1" : "acct:2", "bank", i));
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 5; /* the oldest events of both entities go: holes */
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, &co));
    CHECK(rep.events_removed > 100);
    for (uint32_t i = 300; i < 330; i++)
        CHECK_OK(put(s, i % 2 ? "acct:1" : "acct:2", "bank", i));
    uint16_t kinds[] = {BP_KIND(1, 1)}; /* put(): i % 3 == 0 */
    bp_region by_kind = BP_REGION_INIT;
    by_kind.kinds = kinds;
    by_kind.n_kinds = 1;
    bp_region by_entity = BP_REGION_INIT;
    by_entity.entity = "acct:2";
    uint64_t n_kind = 0, n_entity = 0;
    bp_worker *wk, *we;
    CHECK_OK(bp_cursor_worker(s, &wk, &by_kind, count_event, &n_kind, NULL));
    CHECK_OK(bp_cursor_worker(s, &we, &by_entity, count_event, &n_entity, NULL));
    bp_receipt last =
        BP_RECEIPT_INIT; /* the newest event is outside both regions: kind (1,2), acct:1 */
    CHECK_OK(bp_append(s, &last, "acct:1", "bank", BP_KIND(1, 2), "x", 1));
    CHECK_OK(bp_worker_wait(wk, last.global_seq, 60000));
    CHECK_OK(bp_worker_wait(we, last.global_seq, 60000));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(wk, &st);
    CHECK_EQ(st.lag_events, 0);
    CHECK(st.passed >= last.global_seq);
    CHECK(st.position < last.global_seq);
    CHECK_EQ(st.handled, n_kind);
    bp_worker_stats_get(we, &st);
    CHECK_EQ(st.lag_events, 0);
    CHECK_EQ(st.handled, n_entity);
    CHECK(n_entity < 150); /* the compaction dropped some */
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT;
    CHECK_OK(bp_delivery_stats_get(s, &ds));
    CHECK_EQ(ds.lag_events_max, 0);
    /* every kept event of the kind, counted by a read */
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &by_kind, BP_READ_INDEX_ONLY));
    uint64_t want = 0;
    const bp_event *ev;
    while (bp_iter_next(it, &ev) == BP_OK)
        want++;
    bp_iter_free(it);
    CHECK_EQ(n_kind, want);
    /* more events outside the region while it runs: passed, without a delivery */
    for (int i = 0; i < 20; i++)
        CHECK_OK(bp_append(s, &last, "acct:1", "bank", BP_KIND(1, 2), "y", 1));
    CHECK_OK(bp_worker_wait(wk, last.global_seq, 60000));
    CHECK_EQ(__atomic_load_n(&n_kind, __ATOMIC_RELAXED), want);
    bp_worker_stats_get(wk, &st);
    CHECK_EQ(st.lag_events, 0);
    CHECK_OK(bp_worker_stop(wk));
    CHECK_OK(bp_worker_stop(we));
    /* a worker stuck on an event: the wait ends at its deadline, and lag counts it */
    static int block = 1;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 5;
    cfg.max_attempts = UINT32_MAX;
    bp_worker *stuck;
    CHECK_OK(bp_cursor_worker(s, &stuck, &by_kind, on_event_blocked, &block, &cfg));
    CHECK_FAILS(bp_worker_wait(stuck, last.global_seq, 50), BP_ETIMEDOUT, "short of");
    bp_worker_stats_get(stuck, &st);
    CHECK(st.lag_events > 0);
    __atomic_store_n(&block, 0, __ATOMIC_SEQ_CST);
    CHECK_OK(bp_worker_wait(stuck, last.global_seq, 60000));
    CHECK_OK(bp_worker_stop(stuck));
    /* a region with to_seq: passed for good once it is done */
    bp_region upto = BP_REGION_INIT;
    upto.to_seq = 10;
    uint64_t n_upto = 0;
    bp_worker *wu;
    CHECK_OK(bp_cursor_worker(s, &wu, &upto, count_event, &n_upto, NULL));
    CHECK_OK(bp_worker_wait(wu, last.global_seq, 60000));
    bp_worker_stats_get(wu, &st);
    CHECK_EQ(st.lag_events, 0);
    CHECK_OK(bp_worker_stop(wu));
    CHECK_FAILS(bp_worker_wait(NULL, 1, 0), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A worker stopped by its poison event: bp_worker_wait returns that error, not a timeout. */
static void test_worker_wait_poison_stop(void) {
    const char *dir = t_dir("deliver-waitpoison");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < 10; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    static handler h = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_seq = 4, .fail_times = UINT32_MAX};
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.backoff_ms = 1;
    cfg.max_attempts = 2;
    bp_region r = BP_REGION_INIT;
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &h, &cfg));
    CHECK_FAILS(bp_worker_wait(w, 10, 60000), BP_EIO, "event 4 failed 2 times");
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_EQ(st.passed, 3);
    CHECK_EQ(st.lag_events, 7);
    CHECK_EQ(bp_worker_stop(w), BP_EIO);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* bp_store_close with workers and a reactor still running stops them (positions persisted)
 * and leaves their handles valid: stats, bp_worker_wait and bp_worker_stop (which frees
 * them) still work after the close (the ASan build checks the memory). */
static void test_close_with_workers_running(void) {
    const char *dir = t_dir("deliver-closerun");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < 20; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    bp_region r = BP_REGION_INIT;
    uint64_t n = 0;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "closing";
    bp_worker *w, *local;
    CHECK_OK(bp_cursor_worker(s, &w, &r, count_event, &n, &cfg));
    CHECK_OK(bp_cursor_worker(s, &local, &r, count_event, &n, NULL));
    CHECK_OK(bp_worker_wait(w, 20, 60000));
    CHECK_OK(bp_store_close(s));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK(!st.running);
    CHECK_EQ(st.position, 20);
    CHECK_EQ(st.lag_events, 0);
    CHECK_FAILS(bp_worker_wait(w, 21, 10), BP_ECANCELED, "stopped");
    CHECK_OK(bp_worker_stop(w));
    CHECK_OK(bp_worker_stop(local));
    s = t_open(dir, &NO_SYNC); /* the position was persisted by the close */
    bp_checkpoint_info ci = BP_CHECKPOINT_INFO_INIT;
    size_t count;
    CHECK_OK(bp_checkpoints_list(s, &ci, 1, &count));
    CHECK_EQ(count, 1);
    CHECK_EQ(ci.position, 20);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_worker_poison(void) {
    const char *dir = t_dir("deliver-poison");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < 10; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    bp_region r = BP_REGION_INIT;
    static handler skip = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .fail_seq = 4, .fail_times = UINT32_MAX};
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.backoff_ms = 1;
    cfg.max_attempts = 3;
    cfg.poison = BP_POISON_SKIP;
    cfg.on_poison = on_poison;
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &skip, &cfg));
    CHECK(wait_handled(w, 10));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_EQ(st.poisoned, 1);
    CHECK_EQ(st.retries, 2);
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(skip.poison_calls, 1);
    CHECK_EQ(skip.poison_seq, 4);
    CHECK_EQ(skip.n, 12); /* 9 good ones and 3 tries of the poison event */
    /* stop: the worker ends at the poison event and says why */
    static handler stop = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .fail_seq = 4, .fail_times = UINT32_MAX};
    cfg.poison = BP_POISON_STOP;
    cfg.checkpoint_id = "stopper";
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &stop, &cfg));
    for (int i = 0; i < 2000; i++) {
        bp_worker_stats_get(w, &st);
        if (!st.running) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    CHECK(!st.running);
    CHECK_EQ(st.position, 3);
    CHECK_FAILS(bp_worker_stop(w), BP_EIO, "event 4 failed 3 times: mail server down");
    CHECK_EQ(stop.poison_calls, 1);
    /* its checkpoint stays before the poison event: a restart tries it again */
    static handler again = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &again, &cfg));
    CHECK(wait_handled(w, 10));
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(again.seqs[0], 4);
    /* a retry wait does not hold up a stop */
    static handler down = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .fail_seq = 1, .fail_times = UINT32_MAX};
    cfg = (bp_worker_config)BP_WORKER_CONFIG_INIT;
    cfg.backoff_ms = 60000;
    cfg.backoff_max_ms = 60000;
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &down, &cfg));
    for (int i = 0; i < 2000; i++) { /* until its first try failed */
        pthread_mutex_lock(&down.mu);
        size_t tried = down.n;
        pthread_mutex_unlock(&down.mu);
        if (tried) break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK_OK(bp_worker_stop(w)); /* stopped, not poisoned: no error */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_worker_checkpoints(void) {
    const char *dir = t_dir("deliver-ckpt");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < 50; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    bp_region r = BP_REGION_INIT;
    static handler a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "mailer";
    cfg.checkpoint_every = 7;
    cfg.gap_threshold_ms = 1;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL); /* the events are now older than the gap threshold */
    bp_worker *w, *w2;
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &a, &cfg));
    CHECK_FAILS(bp_cursor_worker(s, &w2, &r, on_event, &a, &cfg), BP_EBUSY, "mailer");
    CHECK(wait_handled(w, 50));
    bp_gap gaps[64];
    size_t ng = bp_worker_take_gaps(w, gaps, 64);
    CHECK_EQ(ng, 50);
    CHECK_EQ(gaps[0].global_seq, 1);
    CHECK(gaps[0].lag_ms >= 20);
    CHECK_EQ(bp_worker_take_gaps(w, gaps, 64), 0);
    CHECK_OK(bp_worker_stop(w)); /* persists 50 although 50 % 7 != 0 */
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 50; i < 60; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    static handler b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK_OK(bp_cursor_worker(s, &w, &r, on_event, &b, &cfg));
    CHECK(wait_handled(w, 60));
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(b.n, 10);
    CHECK_EQ(b.seqs[0], 51); /* resumed after the checkpoint */
    CHECK(strncmp(b.keys[0], "mailer:", 7) == 0);
    CHECK_OK(bp_store_close(s));
    /* a damaged checkpoint, and one that names another store's event, are refused */
    char path[1200], cmd[2600];
    snprintf(path, sizeof path, "%s/cursors/mailer.ckpt", dir);
    const char *other = t_dir("deliver-ckpt-other");
    bp_store *o = t_open(other, &NO_SYNC);
    for (uint32_t i = 0; i < 70; i++)
        CHECK_OK(put(o, "acct:1", "bank", i));
    CHECK_OK(bp_store_close(o));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/cursors' && cp '%s' '%s/cursors/'", other, path, other);
    CHECK_EQ(system(cmd), 0);
    o = t_open(other, &NO_SYNC);
    CHECK_FAILS(bp_cursor_worker(o, &w, &r, on_event, &b, &cfg), BP_ECORRUPT,
                "does not have there");
    CHECK_OK(bp_store_close(o));
    t_rmdir(other);
    snprintf(cmd, sizeof cmd, "printf 'x' | dd of='%s' bs=1 seek=10 conv=notrunc status=none",
             path);
    CHECK_EQ(system(cmd), 0);
    s = t_open(dir, &NO_SYNC);
    CHECK_FAILS(bp_cursor_worker(s, &w, &r, on_event, &b, &cfg), BP_ECORRUPT, "crc");
    /* bad configurations */
    cfg.checkpoint_id = "a/b";
    CHECK_FAILS(bp_cursor_worker(s, &w, &r, on_event, &b, &cfg), BP_EINVAL, "checkpoint id");
    cfg.checkpoint_id = NULL;
    cfg.struct_size = 0;
    CHECK_FAILS(bp_cursor_worker(s, &w, &r, on_event, &b, &cfg), BP_EINVAL, "struct_size");
    CHECK(w == NULL);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Crash test: a child runs a checkpointed worker whose handler logs each delivery to a
 * file; the parent SIGKILLs it at random moments and restarts it until it has handled
 * every event. Every event must be in the log, first deliveries in order, and redeliveries
 * only within checkpoint_every of a crash. */
#define CRASH_EVENTS 3000

static void crash_child(const char *dir, const char *log, uint32_t every) {
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    if (fd < 0 || bp_store_open(&s, dir, &o)) _exit(3);
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:";
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "crash";
    cfg.checkpoint_every = every;
    bp_worker *w;
    if (bp_cursor_worker(s, &w, &r, (bp_worker_fn)(void *)0, NULL, &cfg) != BP_EINVAL) _exit(4);
    extern bp_status crash_log(void *ctx, const bp_delivery *d);
    if (bp_cursor_worker(s, &w, &r, crash_log, &fd, &cfg)) _exit(5);
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    do {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        bp_worker_stats_get(w, &st);
    } while (st.position < CRASH_EVENTS && st.running);
    _exit(bp_worker_stop(w) || bp_store_close(s) ? 6 : 0);
}

bp_status crash_log(void *ctx, const bp_delivery *d);
bp_status crash_log(void *ctx, const bp_delivery *d) {
    char line[32];
    struct timespec ts = {0, 20000}; /* a handler with some work to do: kills land mid-stream */
    nanosleep(&ts, NULL);
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)d->ev->global_seq);
    return write(*(int *)ctx, line, (size_t)n) == n ? BP_OK : BP_EIO;
}

static void test_worker_survives_kill9(void) {
    const char *dir = t_dir("deliver-crash");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 0; i < CRASH_EVENTS; i++)
        CHECK_OK(put(s, "acct:1", "bank", i));
    CHECK_OK(bp_store_close(s));
    char log[1200];
    snprintf(log, sizeof log, "%s.log", dir);
    unlink(log);
    srand(99);
    int kills = 0, runs = 0;
    const uint32_t every = 5;
    const char *env = getenv("BP_WORKER_KILLS");
    int want_kills = env ? atoi(env) : 30; /* the torture label asks for more */
    for (;; runs++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) crash_child(dir, log, every);
        int st;
        if (kills < want_kills) { /* kill it at a random moment (unless it already finished) */
            struct timespec ts = {0, (long)(rand() % 10000) * 1000L};
            nanosleep(&ts, NULL);
            if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                CHECK_EQ(waitpid(pid, &st, 0), pid);
                kills++;
                continue;
            }
        } else {
            CHECK_EQ(waitpid(pid, &st, 0), pid); /* the last run finishes */
        }
        CHECK(WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 0);
        break;
    }
    FILE *f = fopen(log, "r");
    CHECK(f);
    static uint32_t times[CRASH_EVENTS + 1];
    memset(times, 0, sizeof times);
    unsigned long long seq, prev = 0, high = 0;
    uint64_t redelivered = 0;
    while (fscanf(f, "%llu", &seq) == 1) {
        CHECK(seq >= 1 && seq <= CRASH_EVENTS);
        if (seq <= high) { /* a redelivery: only just after a crash, within `every` */
            CHECK(seq + every > high);
            redelivered++;
        } else {
            CHECK_EQ(seq, high + 1); /* first deliveries in order, none skipped */
            high = seq;
        }
        if (seq < prev) CHECK(prev - seq < every);
        prev = seq;
        times[seq]++;
    }
    fclose(f);
    CHECK_EQ(high, CRASH_EVENTS);
    for (uint32_t k = 1; k <= CRASH_EVENTS; k++)
        CHECK(times[k] >= 1);
    CHECK(redelivered <= (uint64_t)kills * every);
    fprintf(stderr, "  worker crash test: %d runs, %d SIGKILLs, %llu redeliveries\n", runs + 1,
            kills, (unsigned long long)redelivered);
    unlink(log);
    t_rmdir(dir);
}

/* ----------------------------------------------------------------- reactors */

#define ORDER(F) F(ONE, U32, number, 0)
BP_TYPE_STATIC(order_t, ORDER, "shop.order_placed", BP_KIND(2, 1), 1);
#define EMAIL(F)                                                                                   \
    F(ONE, U32, order, 0)                                                                          \
    F(ONE, STR, to, 32)
BP_TYPE_STATIC(email_t, EMAIL, "outbox.email_queued", BP_KIND(2, 2), 1);
#define ORDERS 1500

/* Each order queues one email; every tenth also a second one. */
static bp_status on_order(void *ctx, const bp_delivery *d, const void *value, bp_reactions *out) {
    (void)ctx;
    const order_t *o = value;
    if (!o) return bp_set_error(BP_EINVAL, "not an order");
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
    email_t e = {.order = o->number};
    snprintf(e.to, sizeof e.to, "customer%u@example.com", o->number % 100);
    bp_status rc = bp_react_typed(out, "outbox:mail", "shop", &email_t_type, &e);
    if (!rc && o->number % 10 == 0) {
        snprintf(e.to, sizeof e.to, "audit@example.com");
        rc = bp_react_typed(out, "outbox:audit", "shop", &email_t_type, &e);
    }
    (void)d;
    return rc;
}

static void reactor_child(const char *dir) {
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    if (bp_store_open(&s, dir, &o)) _exit(3);
    bp_region r = BP_REGION_INIT;
    uint16_t kinds[] = {order_t_type.kind};
    r.kinds = kinds;
    r.n_kinds = 1;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "outbox";
    cfg.checkpoint_every = 16; /* so that crashes redeliver triggers whose reactions exist */
    bp_worker *w;
    if (bp_reactor(s, &w, &r, &order_t_type, on_order, NULL, &cfg)) _exit(5);
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    do {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        bp_worker_stats_get(w, &st);
    } while (st.position < ORDERS && st.running); /* the orders are seqs 1..ORDERS */
    _exit(bp_worker_stop(w) || bp_store_close(s) ? 6 : 0);
}

static void test_reactor_exactly_once_across_kill9(void) {
    const char *dir = t_dir("deliver-reactor");
    bp_store *s = t_open(dir, &NO_SYNC);
    for (uint32_t i = 1; i <= ORDERS; i++) {
        order_t o = {.number = i};
        char ent[32];
        snprintf(ent, sizeof ent, "order:%u", i);
        CHECK_OK(bp_append_typed(s, NULL, ent, "shop", &order_t_type, &o, NULL));
    }
    /* bad reactions are refused */
    static bp_reactions *none;
    CHECK_FAILS(bp_react(none, "a", "b", BP_KIND(2, 2), "", 0), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(s));
    const char *env = getenv("BP_WORKER_KILLS");
    int want_kills = env ? atoi(env) : 30, kills = 0;
    srand(7);
    for (;;) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) reactor_child(dir);
        int st;
        if (kills < want_kills) {
            struct timespec ts = {0, (long)(rand() % 10000) * 1000L};
            nanosleep(&ts, NULL);
            if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                CHECK_EQ(waitpid(pid, &st, 0), pid);
                kills++;
                continue;
            }
        } else {
            CHECK_EQ(waitpid(pid, &st, 0), pid);
        }
        CHECK(WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 0);
        break;
    }
    /* every order has exactly its reactions, each caused by it, in its correlation */
    s = t_open(dir, &NO_SYNC);
    static uint8_t count[ORDERS + 1];
    memset(count, 0, sizeof count);
    bp_iter *it;
    const bp_event *ev;
    email_t e;
    size_t total = 0;
    CHECK_OK(bp_by_fact_typed(s, &it, &email_t_type));
    while (bp_iter_next_typed(it, &ev, &e, &email_t_type) == BP_OK) {
        CHECK(e.order >= 1 && e.order <= ORDERS);
        count[e.order]++;
        total++;
        CHECK(ev->has_causation);
        bp_event *trigger;
        CHECK_OK(bp_get(s, &trigger, &ev->causation_id));
        order_t o;
        CHECK_OK(bp_event_decode(s, &o, trigger, &order_t_type));
        CHECK_EQ(o.number, e.order);
        CHECK(memcmp(ev->correlation_id.b, trigger->correlation_id.b, 16) == 0);
        bp_event_free(trigger);
        CHECK(ev->idempotency_key && strncmp(ev->idempotency_key, "outbox:", 7) == 0);
    }
    bp_iter_free(it);
    for (uint32_t i = 1; i <= ORDERS; i++)
        CHECK_EQ(count[i], i % 10 == 0 ? 2 : 1);
    CHECK_EQ(total, ORDERS + ORDERS / 10);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    /* bp_append_reaction by hand */
    CHECK_OK(bp_by_fact_typed(s, &it, &order_t_type));
    CHECK_OK(bp_iter_next(it, &ev));
    bp_receipt rc = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_reaction(s, &rc, ev, "audit:1", "shop", BP_KIND(2, 3), NULL, 0, NULL));
    bp_event *got;
    CHECK_OK(bp_get(s, &got, &rc.event_id));
    CHECK(got->has_causation && memcmp(got->causation_id.b, ev->event_id.b, 16) == 0);
    CHECK(memcmp(got->correlation_id.b, ev->correlation_id.b, 16) == 0);
    bp_event_free(got);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    fprintf(stderr, "  reactor crash test: %d SIGKILLs, %zu reactions, each written once\n", kills,
            total);
    t_rmdir(dir);
}

/* The vector of doc/FORMAT.md "Cursor checkpoints". */
static void test_checkpoint_vector(void) {
    bp_id id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(i + 1);
    uint8_t b[BP_CURSORCK_SIZE];
    bp_cursorck_encode(b, 5, &id);
    static const uint8_t want[BP_CURSORCK_SIZE] = {
        0x42, 0x50, 0x43, 0x55, 0, 0, 0, 1,  0,  0,  0,  0,  0,  0,  0,    5,    1,    2,
        3,    4,    5,    6,    7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x99, 0x6e, 0x3a, 0x9e};
    CHECK(memcmp(b, want, sizeof want) == 0);
    uint64_t pos;
    bp_id back;
    CHECK_OK(bp_cursorck_decode(b, sizeof b, &pos, &back));
    CHECK_EQ(pos, 5);
    CHECK(memcmp(back.b, id.b, 16) == 0);
    b[9] ^= 1;
    CHECK_EQ(bp_cursorck_decode(b, sizeof b, &pos, &back), BP_ECORRUPT);
    CHECK_EQ(bp_cursorck_decode(b, sizeof b - 1, &pos, &back), BP_ECORRUPT);
}

int main(void) {
    RUN(test_checkpoint_vector);
    RUN(test_cursor_batches_and_resume);
    RUN(test_cursor_waits);
    RUN(test_cursor_under_concurrent_writers);
    RUN(test_lossy_subscription);
    RUN(test_writers_never_wait_for_subscribers);
    RUN(test_worker_in_order_with_retries);
    RUN(test_worker_poison);
    RUN(test_worker_lag_and_wait);
    RUN(test_worker_wait_poison_stop);
    RUN(test_close_with_workers_running);
    RUN(test_worker_checkpoints);
    RUN(test_worker_survives_kill9);
    RUN(test_reactor_exactly_once_across_kill9);
    T_DONE();
}
