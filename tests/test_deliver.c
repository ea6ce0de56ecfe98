/* Delivery: cursors (ordered, lossless, batches, blocking waits, resume) and lossy
 * subscriptions (bounded queues, drop counting, catch-up with a cursor), also with
 * concurrent writers (batpak/deliver.h). */
#include "t.h"

#include <pthread.h>
#include <time.h>

static bp_store *open_store(const char *dir) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s = NULL;
    if (bp_store_open(&s, dir, &o) != BP_OK) {
        fprintf(stderr, "open %s: %s\n", dir, bp_last_error());
        exit(1);
    }
    return s;
}

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
    bp_store *s = open_store(dir);
    const char *ents[] = {"acct:1", "acct:2", "other:1"};
    for (uint32_t i = 0; i < 90; i++)
        CHECK_OK(put(s, ents[i % 3], "bank", i));
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &r, 0, &c));
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
    CHECK_EQ(rc, BP_DONE);
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
    CHECK_OK(bp_cursor_open(s, &r, 50, &c));
    total = 0;
    while (bp_cursor_next(c, evs, 4, &n, 0) == BP_OK) {
        CHECK(evs[0]->global_seq > 50);
        total += n;
    }
    CHECK_EQ(total, 20);                                    /* seqs 51..80 of acct:* */
    CHECK_EQ(bp_cursor_next(c, evs, 4, &n, 1000), BP_DONE); /* finished: no wait */
    bp_cursor_free(c);
    /* bad arguments */
    CHECK_OK(bp_cursor_open(s, &r, 0, &c));
    CHECK_FAILS(bp_cursor_next(c, evs, 0, &n, 0), BP_EINVAL, "max");
    CHECK_FAILS(bp_cursor_next(c, evs, 5000, &n, 0), BP_EINVAL, "max");
    bp_cursor_free(c);
    r.category = 99;
    CHECK_FAILS(bp_cursor_open(s, &r, 0, &c), BP_EINVAL, "category");
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
    bp_store *s = open_store(dir);
    bp_region r = BP_REGION_INIT;
    r.entity = "acct:late";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &r, 0, &c));
    const bp_event *evs[4];
    size_t n;
    CHECK_EQ(bp_cursor_next(c, evs, 4, &n, 20), BP_DONE); /* nothing comes */
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
            bp_receipt r;
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
    bp_store *s = open_store(dir);
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:w";
    bp_cursor *c;
    CHECK_OK(bp_cursor_open(s, &r, 0, &c));
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &r, 64, &sub));
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
        bp_notice nt; /* drain the doorbell as we go: notices come in order too */
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
    bp_notice nt;
    while (bp_subscription_next(sub, &nt, 0) == BP_OK)
        notices++;
    bp_subscription_stats st;
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
    bp_store *s = open_store(dir);
    CHECK_OK(put(s, "acct:1", "bank", 0)); /* before the subscription: never notified */
    bp_region r = BP_REGION_INIT;
    r.scope = "bank";
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &r, 10, &sub));
    for (uint32_t i = 1; i <= 30; i++)
        CHECK_OK(put(s, i % 6 == 0 ? "acct:2" : "acct:1", i % 6 == 0 ? "misc" : "bank", i));
    /* 25 matching events (every 6th is in scope misc); the queue holds the first 10 */
    bp_notice nt;
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
    CHECK_EQ(bp_subscription_next(sub, &nt, 0), BP_DONE);
    bp_subscription_stats st;
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
    CHECK_OK(bp_cursor_open(s, &r, seqs[9], &c));
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
    CHECK_FAILS(bp_subscribe_lossy(s, &r, 0, &sub), BP_EINVAL, "capacity");
    CHECK_FAILS(bp_subscribe_lossy(s, &r, BP_SUBSCRIPTION_MAX + 1, &sub), BP_EINVAL, "capacity");
    r.version = 7;
    CHECK_FAILS(bp_subscribe_lossy(s, &r, 4, &sub), BP_EINVAL, "version");
    CHECK(sub == NULL);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_writers_never_wait_for_subscribers(void) {
    const char *dir = t_dir("deliver-full");
    bp_store *s = open_store(dir);
    bp_region r = BP_REGION_INIT;
    bp_subscription *stuck, *live;
    CHECK_OK(bp_subscribe_lossy(s, &r, 1, &stuck)); /* never read */
    CHECK_OK(bp_subscribe_lossy(s, &r, 4, &live));
    later l = {s, 30, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, append_later, &l), 0);
    bp_notice nt;
    CHECK_OK(bp_subscription_next(live, &nt, 30000)); /* woken by the append */
    pthread_join(th, NULL);
    for (uint32_t i = 0; i < 5000; i++) /* would hang if a full queue made writers wait */
        CHECK_OK(put(s, "acct:1", "bank", i));
    bp_subscription_stats st;
    bp_subscription_stats_get(stuck, &st);
    CHECK_EQ(st.depth, 1);
    CHECK_EQ(st.dropped, 5000);
    bp_unsubscribe(stuck);
    bp_unsubscribe(live);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_cursor_batches_and_resume);
    RUN(test_cursor_waits);
    RUN(test_cursor_under_concurrent_writers);
    RUN(test_lossy_subscription);
    RUN(test_writers_never_wait_for_subscribers);
    T_DONE();
}
