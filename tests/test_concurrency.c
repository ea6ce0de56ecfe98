/* Several writer and reader threads on one handle at once (run under TSan by
 * `make test-tsan`). Writers append durably to their own entities and race on
 * one shared entity with CAS; readers check, while the writes go on, that
 * every snapshot they see is consistent: a dense global sequence, gap-free
 * per-entity clocks, and bp_get agreeing with the iterator. Group commit is
 * proven by the platform's fsync count being below the number of appends. */
#include "t.h"
#include "platform/platform.h"

#include <pthread.h>
#include <stdatomic.h>

#define WRITERS 4
#define READERS 2
#define PER_WRITER 60
#define SHARED_PER_WRITER 10

typedef struct ctx {
    bp_store *s;
    int id;
    atomic_int *writers_left;
    int errors;
    long snapshots;
    char msg[256];
} ctx;

#define FAILT(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)->errors) snprintf((c)->msg, sizeof(c)->msg, __VA_ARGS__);                         \
        (c)->errors++;                                                                             \
    } while (0)

static void *writer(void *arg) {
    ctx *c = arg;
    char entity[32];
    snprintf(entity, sizeof entity, "writer:%d", c->id);
    int shared_done = 0;
    for (int i = 0; i < PER_WRITER; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "w%d-%d", c->id, i);
        bp_receipt r = BP_RECEIPT_INIT;
        bp_status rc = bp_append(c->s, &r, entity, "conc", 0x1001, payload, (size_t)n);
        if (rc != BP_OK) {
            FAILT(c, "append: %s", bp_last_error());
            break;
        }
        if (r.clock != (uint64_t)i + 1 || r.durability != BP_DUR_SYNC)
            FAILT(c, "%s: clock %llu (want %d), durability %d", entity, (unsigned long long)r.clock,
                  i + 1, (int)r.durability);
        if (i % (PER_WRITER / SHARED_PER_WRITER) == 0) {
            /* CAS on the shared entity: read the head, append expecting it, retry on conflict */
            for (;;) {
                uint64_t clock;
                bp_hash h;
                if (bp_entity_head(c->s, &clock, &h, "shared") != BP_OK) {
                    FAILT(c, "head: %s", bp_last_error());
                    break;
                }
                bp_append_options o = BP_APPEND_OPTIONS_INIT;
                o.has_expected_clock = true;
                o.expected_clock = clock;
                rc = bp_append_ex(c->s, &r, "shared", "conc", 0x1002, payload, (size_t)n, &o);
                if (rc == BP_ECONFLICT) continue;
                if (rc != BP_OK) {
                    FAILT(c, "cas append: %s", bp_last_error());
                } else if (r.clock != clock + 1 || memcmp(r.event_hash.b, h.b, 32) == 0) {
                    FAILT(c, "cas clock %llu after %llu", (unsigned long long)r.clock,
                          (unsigned long long)clock);
                }
                shared_done++;
                break;
            }
        }
    }
    if (shared_done != SHARED_PER_WRITER) FAILT(c, "shared appends %d", shared_done);
    atomic_fetch_sub(c->writers_left, 1);
    return NULL;
}

/* One pass over a snapshot: the whole log, then one entity's stream. */
static void check_snapshot(ctx *c, unsigned flags) {
    bp_iter *it;
    if (bp_query(c->s, &it, &(bp_region)BP_REGION_INIT, flags) != BP_OK) {
        FAILT(c, "query: %s", bp_last_error());
        return;
    }
    uint64_t expect_seq = 1, clocks[WRITERS + 1] = {0};
    const bp_event *e;
    bp_status rc;
    bp_id pick = {{0}};
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        if (e->global_seq != expect_seq) {
            FAILT(c, "global_seq %llu, want %llu", (unsigned long long)e->global_seq,
                  (unsigned long long)expect_seq);
            break;
        }
        expect_seq++;
        int w = strcmp(e->entity, "shared") == 0 ? WRITERS : atoi(e->entity + 7);
        if (w < 0 || w > WRITERS || e->clock != ++clocks[w]) {
            FAILT(c, "%s: clock %llu, want %llu", e->entity, (unsigned long long)e->clock,
                  (unsigned long long)clocks[w]);
            break;
        }
        if (flags == BP_READ_FULL && e->payload_len == 0) FAILT(c, "empty payload");
        if ((e->global_seq % 7) == 0) pick = e->event_id;
    }
    if (rc != BP_DONE && rc != BP_OK) FAILT(c, "iter: %s", bp_last_error());
    bp_iter_free(it);
    /* an event seen in a snapshot stays gettable */
    bp_id zero = {{0}};
    if (memcmp(&pick, &zero, sizeof pick) != 0) {
        bp_event *ev;
        if (bp_get(c->s, &ev, &pick) != BP_OK) {
            FAILT(c, "get: %s", bp_last_error());
        } else {
            if (memcmp(ev->event_id.b, pick.b, 16) != 0) FAILT(c, "get returned another event");
            bp_event_free(ev);
        }
    }
    /* a stream of one entity is gap-free from clock 1 */
    char entity[32];
    snprintf(entity, sizeof entity, "writer:%d", c->id % WRITERS);
    if (bp_stream(c->s, &it, entity, flags) != BP_OK) {
        FAILT(c, "stream: %s", bp_last_error());
        return;
    }
    uint64_t k = 0;
    while ((rc = bp_iter_next(it, &e)) == BP_OK)
        if (e->clock != ++k)
            FAILT(c, "stream clock %llu want %llu", (unsigned long long)e->clock,
                  (unsigned long long)k);
    if (rc != BP_DONE) FAILT(c, "stream iter: %s", bp_last_error());
    bp_iter_free(it);
}

static void *reader(void *arg) {
    ctx *c = arg;
    while (atomic_load(c->writers_left) > 0 && !c->errors) {
        check_snapshot(c, c->snapshots % 2 ? BP_READ_FULL : BP_READ_INDEX_ONLY);
        bp_store_stats st = BP_STORE_STATS_INIT;
        if (bp_store_stats_get(c->s, &st) != BP_OK) FAILT(c, "stats: %s", bp_last_error());
        c->snapshots++;
    }
    check_snapshot(c, BP_READ_FULL);
    c->snapshots++;
    return NULL;
}

static void test_writers_and_readers(void) {
    const char *dir = t_dir("conc");
    bp_fault f;
    bp_fault_init(&f);
    f.sync_delay_us = 2000; /* a slow disk: appenders arriving during a sync must share the next */
    t_open_opts o = {.fault = &f, .segment_size = 16 << 10}; /* rotations happen during the run */
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    pthread_mutex_lock(&f.mu);
    uint64_t syncs0 = f.syncs;
    pthread_mutex_unlock(&f.mu);

    atomic_int left = WRITERS;
    ctx w[WRITERS], r[READERS];
    pthread_t tw[WRITERS], tr[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (ctx){.s = s, .id = i, .writers_left = &left};
        CHECK(pthread_create(&tr[i], NULL, reader, &r[i]) == 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (ctx){.s = s, .id = i, .writers_left = &left};
        CHECK(pthread_create(&tw[i], NULL, writer, &w[i]) == 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(tw[i], NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(tr[i], NULL);
    for (int i = 0; i < WRITERS; i++) {
        if (w[i].errors) fprintf(stderr, "writer %d: %s\n", i, w[i].msg);
        CHECK_EQ(w[i].errors, 0);
    }
    for (int i = 0; i < READERS; i++) {
        if (r[i].errors) fprintf(stderr, "reader %d: %s\n", i, r[i].msg);
        CHECK_EQ(r[i].errors, 0);
        CHECK(r[i].snapshots >= 1);
    }

    const uint64_t appends = WRITERS * (PER_WRITER + SHARED_PER_WRITER);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, appends);
    CHECK_EQ(st.appends, appends);
    CHECK(st.segments > 1);
    pthread_mutex_lock(&f.mu);
    uint64_t syncs = f.syncs - syncs0;
    pthread_mutex_unlock(&f.mu);
    fprintf(stderr, "  %llu durable appends, %llu fsyncs\n", (unsigned long long)appends,
            (unsigned long long)syncs);
    CHECK(syncs < appends); /* group commit shared fsyncs */
    uint64_t clock;
    bp_hash h;
    CHECK_OK(bp_entity_head(s, &clock, &h, "shared"));
    CHECK_EQ(clock, WRITERS * SHARED_PER_WRITER);
    CHECK_OK(bp_store_close(s));

    /* everything is there, chained, after reopen */
    o.fault = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, appends);
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* Readers and writers on separate entities with NO_SYNC, many short appends:
 * iterators created mid-write see a stable snapshot. */
static void test_snapshot_is_stable(void) {
    const char *dir = t_dir("conc-snap");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s = NULL;
    CHECK_OK(bp_store_open(&s, dir, &o));
    for (int i = 0; i < 100; i++)
        CHECK_OK(bp_append(s, NULL, "a", "s", 0x1001, "x", 1));
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "a", BP_READ_INDEX_ONLY));
    for (int i = 0; i < 100; i++)
        CHECK_OK(bp_append(s, NULL, "a", "s", 0x1001, "y", 1));
    const bp_event *e;
    int n = 0;
    while (bp_iter_next(it, &e) == BP_OK)
        n++;
    bp_iter_free(it);
    CHECK_EQ(n, 100);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* The background flusher of BP_DURABLE_EVERY(n, ms) races with appenders,
 * explicit syncs and close. */
static void *every_writer(void *arg) {
    ctx *c = arg;
    char entity[32];
    snprintf(entity, sizeof entity, "every:%d", c->id);
    for (int i = 0; i < 300; i++) {
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append(c->s, &r, entity, "conc", 0x1001, "e", 1) != BP_OK) {
            FAILT(c, "append: %s", bp_last_error());
            break;
        }
        if (r.durability != BP_DUR_EVERY && r.durability != BP_DUR_SYNC)
            FAILT(c, "durability %d", (int)r.durability);
        if (i % 100 == 99 && bp_store_sync(c->s) != BP_OK) FAILT(c, "sync: %s", bp_last_error());
    }
    return NULL;
}

static void test_every_ms_flusher(void) {
    const char *dir = t_dir("conc-every");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_DURABLE_EVERY(64, 1);
    bp_store *s = NULL;
    CHECK_OK(bp_store_open(&s, dir, &o));
    ctx w[WRITERS];
    pthread_t tw[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (ctx){.s = s, .id = i};
        CHECK(pthread_create(&tw[i], NULL, every_writer, &w[i]) == 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(tw[i], NULL);
    for (int i = 0; i < WRITERS; i++) {
        if (w[i].errors) fprintf(stderr, "writer %d: %s\n", i, w[i].msg);
        CHECK_EQ(w[i].errors, 0);
    }
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, WRITERS * 300);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Group commit under failure: writers append durably (NO_SYNC appends mixed in) while
 * the platform fails the Nth write or the Nth fdatasync. Every append either returns a
 * receipt or BP_EIO; after a reopen every event acknowledged durable is there, with the
 * payload it was given, and nothing else claims its seq. */
typedef struct fctx {
    bp_store *s;
    int id;
    int acked;
    bp_receipt r[80];
    int idx[80];
    bool durable[80];
} fctx;

static void *fault_writer(void *arg) {
    fctx *c = arg;
    char entity[32];
    snprintf(entity, sizeof entity, "fw:%d", c->id);
    for (int i = 0; i < 80; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "f%d-%d", c->id, i);
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        ao.durability = i % 5 == 4 ? BP_NO_SYNC : BP_DURABLE;
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_ex(c->s, &r, entity, "s", 0x1001, payload, (size_t)n, &ao) != BP_OK) break;
        c->r[c->acked] = r;
        c->idx[c->acked] = i;
        c->durable[c->acked] = r.durability == BP_DUR_SYNC;
        c->acked++;
    }
    return NULL;
}

static void test_group_commit_under_faults(void) {
    for (int kind = 0; kind < 2; kind++)
        for (uint64_t nth = 5; nth <= 65; nth += 20) {
            const char *dir = t_dir("conc-fault");
            bp_fault f;
            bp_fault_init(&f);
            /* rotations (seals) happen during the run too */
            t_open_opts o = {.fault = &f, .segment_size = 8192};
            bp_store *s = NULL;
            CHECK_OK(t_open_try(&s, dir, &o));
            if (kind == 0)
                f.fail_write_at = f.writes + nth;
            else
                f.fail_sync_at = f.syncs + nth;
            f.sticky = true;
            fctx w[WRITERS];
            pthread_t tw[WRITERS];
            for (int i = 0; i < WRITERS; i++) {
                memset(&w[i], 0, sizeof w[i]);
                w[i].s = s;
                w[i].id = i;
                CHECK(pthread_create(&tw[i], NULL, fault_writer, &w[i]) == 0);
            }
            for (int i = 0; i < WRITERS; i++)
                pthread_join(tw[i], NULL);
            CHECK(f.tripped > 0);
            (void)bp_store_close(s); /* fail-stopped: BP_EIO */
            bp_fault_destroy(&f);
            o.fault = NULL;
            CHECK_OK(t_open_try(&s, dir, &o));
            for (int i = 0; i < WRITERS; i++)
                for (int k = 0; k < w[i].acked; k++) {
                    if (!w[i].durable[k]) continue;
                    bp_event *e = NULL;
                    char want[32];
                    int n = snprintf(want, sizeof want, "f%d-%d", i, w[i].idx[k]);
                    bp_status grc = bp_get(s, &e, &w[i].r[k].event_id);
                    if (grc != BP_OK) {
                        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
                        bp_store_open_report_get(s, &rep);
                        fprintf(stderr,
                                "  %s fault at call %llu: writer %d's durable seq %llu missing; "
                                "reopen found %llu events, cut %llu bytes\n",
                                kind ? "fdatasync" : "write", (unsigned long long)nth, i,
                                (unsigned long long)w[i].r[k].global_seq,
                                (unsigned long long)rep.events, (unsigned long long)rep.bytes_cut);
                    }
                    CHECK_OK(grc);
                    if (!e) continue;
                    CHECK_EQ(e->payload_len, (size_t)n);
                    CHECK(memcmp(e->payload, want, (size_t)n) == 0);
                    CHECK_EQ(e->global_seq, w[i].r[k].global_seq);
                    bp_event_free(e);
                }
            bp_verify_report vr = BP_VERIFY_REPORT_INIT;
            CHECK_OK(bp_store_verify(s, &vr, NULL));
            CHECK_OK(bp_store_close(s));
            t_rmdir(dir);
        }
}

int main(void) {
    RUN(test_writers_and_readers);
    RUN(test_snapshot_is_stable);
    RUN(test_every_ms_flusher);
    RUN(test_group_commit_under_faults);
    T_DONE();
}
