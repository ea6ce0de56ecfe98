/* Compaction: retention by count, age and tombstone against a fold by hand; kept events
 * byte-identical (export before/after); chains verify from their anchors, a tampered anchor
 * is found; appends, projections, cursors and idempotency after a compaction; merging;
 * bad input; readers and appenders during compactions; and crash safety: SIGKILL at every
 * step and a fault sweep (every write, sync, rename and open failing, then a power cut)
 * leave the store exactly as before or exactly as after. */
#include "t.h"
#include "bp_testing.h"
#include "format/format.h"
#include "platform/platform.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* The export's event lines (a compacted store's export starts with its anchors record:
 * left out here, see test_export_anchors_line). */
static char *export_all(bp_store *s) {
    return t_export(s, true);
}

/* The lines of text whose event id is one of ids[0..n). */
static char *lines_with(const char *text, const bp_id *ids, size_t n) {
    size_t len = strlen(text);
    char *out = calloc(len + 1, 1), *o = out;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
        bool keep = false;
        for (size_t i = 0; i < n && !keep; i++) {
            char t[37];
            bp_id_format(&ids[i], t);
            char key[64];
            snprintf(key, sizeof key, "\"event_id\":\"%s\"", t);
            keep = memmem(p, l, key, strlen(key)) != NULL;
        }
        if (keep) {
            memcpy(o, p, l);
            o += l;
        }
        p += l;
    }
    return out;
}

static bool verify_clean(bp_store *s) {
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status rc = bp_store_verify(s, &vr, NULL);
    if (rc) fprintf(stderr, "verify: %s\n", vr.first_problem);
    return rc == BP_OK && vr.problems == 0;
}

#define N_ENT 4
static const char *ENTS[N_ENT] = {"acct:a", "acct:b", "acct:c", "acct:d"};

/* A store of several small segments: entity i gets 20 + 15 i events, with a batch in the
 * middle. ids[e][k] is the id of entity e's event at clock k + 1. */
typedef struct book {
    bp_id ids[N_ENT][80];
    bp_hash hash[N_ENT][80];
    uint32_t n[N_ENT];
} book;

static void fill(bp_store *s, book *b, int rounds) {
    char payload[200];
    for (int r = 0; r < rounds; r++) {
        for (int e = 0; e < N_ENT; e++) {
            if (r >= 20 + 15 * e) continue;
            int len =
                snprintf(payload, sizeof payload, "{\"entity\":%d,\"round\":%d,\"pad\":\"%s\"}", e,
                         r, "................................................");
            bp_receipt rc = BP_RECEIPT_INIT;
            if (r == 7 && e == 0) { /* a batch across two entities */
                bp_batch_item items[2] = {
                    {ENTS[0], "ledger", BP_KIND(1, 1), payload, (size_t)len, NULL},
                    {ENTS[1], "ledger", BP_KIND(1, 2), payload, (size_t)len, NULL}};
                bp_receipt rs[2];
                t_receipts(rs, sizeof rs / sizeof rs[0]);
                CHECK_OK(bp_append_batch(s, rs, items, 2));
                for (int k = 0; k < 2; k++) {
                    b->ids[k][b->n[k]] = rs[k].event_id;
                    b->hash[k][b->n[k]++] = rs[k].event_hash;
                }
                e = 1;
                continue;
            }
            CHECK_OK(bp_append(s, &rc, ENTS[e], "ledger", BP_KIND(1, 1), payload, (size_t)len));
            b->ids[e][b->n[e]] = rc.event_id;
            b->hash[e][b->n[e]++] = rc.event_hash;
        }
    }
}

/* Kept ids when each entity keeps its newest k events (fold by hand). */
static size_t kept_newest(const book *b, uint32_t k, bp_id *out) {
    size_t n = 0;
    for (int e = 0; e < N_ENT; e++)
        for (uint32_t c = b->n[e] > k ? b->n[e] - k : 0; c < b->n[e]; c++)
            out[n++] = b->ids[e][c];
    return n;
}

static void test_keep_last(void) {
    const char *dir = t_dir("compact-count");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    book b;
    memset(&b, 0, sizeof b);
    fill(s, &b, 80);
    bp_store_stats st0 = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st0));
    CHECK(st0.segments > 4);
    char *before = export_all(s);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 5;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK(rep.changed);
    uint64_t total = 0;
    for (int e = 0; e < N_ENT; e++)
        total += b.n[e];
    CHECK_EQ(rep.events_removed, total - 5 * N_ENT);
    CHECK_EQ(rep.events_kept, 5 * N_ENT);
    CHECK_EQ(rep.entities_anchored, N_ENT);
    CHECK(rep.segments_after < rep.segments_before);
    CHECK(rep.bytes_after < rep.bytes_before);
    bp_id kept[N_ENT * 5];
    size_t nk = kept_newest(&b, 5, kept);
    char *want = lines_with(before, kept, nk);
    char *after = export_all(s);
    CHECK(after && strcmp(after, want) == 0); /* kept events byte-identical, nothing else */
    /* removed events are gone, kept ones read with their clocks */
    bp_event *ev;
    CHECK_FAILS(bp_get(s, &ev, &b.ids[2][0]), BP_ENOTFOUND, "not found");
    for (int e = 0; e < N_ENT; e++) {
        CHECK_EQ(t_count_stream(s, ENTS[e]), 5);
        uint64_t clock;
        bp_hash h;
        CHECK_OK(bp_entity_head(s, &clock, &h, ENTS[e]));
        CHECK_EQ(clock, b.n[e]);
        CHECK(!memcmp(h.b, b.hash[e][b.n[e] - 1].b, 32));
        bp_iter *it;
        const bp_event *x;
        CHECK_OK(bp_stream(s, &it, ENTS[e], 0));
        uint64_t want_clock = b.n[e] - 4;
        while (bp_iter_next(it, &x) == BP_OK) {
            CHECK_EQ(x->clock, want_clock);
            want_clock++;
        }
        bp_iter_free(it);
        /* index-only reads give the same clocks */
        CHECK_OK(bp_stream(s, &it, ENTS[e], BP_READ_INDEX_ONLY));
        CHECK_EQ(bp_iter_next(it, &x), BP_OK);
        CHECK_EQ(x->clock, b.n[e] - 4);
        bp_iter_free(it);
    }
    CHECK(verify_clean(s));
    CHECK_OK(bp_store_stats_get(s, &st0));
    CHECK_EQ(st0.events, 5 * N_ENT);
    /* the chain goes on from the head */
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, ENTS[0], "ledger", BP_KIND(1, 1), "next", 4));
    CHECK_EQ(r.clock, b.n[0] + 1);
    CHECK_OK(bp_store_close(s));
    /* and all of it survives a reopen (footers with seqs, anchors) */
    s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    CHECK(verify_clean(s));
    CHECK_EQ(t_count_stream(s, ENTS[0]), 6);
    CHECK_OK(bp_get(s, &ev, &kept[0]));
    if (ev) bp_event_free(ev);
    char *again = export_all(s);
    CHECK(again && strncmp(again, want, strlen(want)) == 0);
    /* a second compaction merges the compacted files with the newer ones */
    o.keep_last = 2;
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK_EQ(t_count_stream(s, ENTS[0]), 2);
    CHECK_EQ(t_count_stream(s, ENTS[3]), 2);
    CHECK(verify_clean(s));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    CHECK(verify_clean(s));
    CHECK_EQ(t_count_stream(s, ENTS[1]), 2);
    CHECK_OK(bp_store_close(s));
    free(before);
    free(want);
    free(after);
    free(again);
    t_rmdir(dir);
}

static void test_age_and_tombstone(void) {
    const char *dir = t_dir("compact-age");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    bp_receipt old[3] = {BP_RECEIPT_INIT}, young[3] = {BP_RECEIPT_INIT}, t = BP_RECEIPT_INIT;
    t_receipts(old, sizeof old / sizeof old[0]);
    t_receipts(young, sizeof young / sizeof young[0]);
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(s, &old[i], "user:1", "crm", BP_KIND(1, 1), "old", 3));
    usleep(1200 * 1000); /* the data's age, not a timing assertion */
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(s, &young[i], "user:1", "crm", BP_KIND(1, 1), "young", 5));
    /* user:2 is deleted, then written again; user:3 is deleted for good */
    CHECK_OK(bp_append(s, NULL, "user:2", "crm", BP_KIND(1, 1), "a", 1));
    CHECK_OK(bp_tombstone(s, &t, "user:2", "crm"));
    CHECK_EQ(t.clock, 2);
    CHECK_OK(bp_append(s, NULL, "user:2", "crm", BP_KIND(1, 1), "b", 1));
    CHECK_OK(bp_append(s, NULL, "user:3", "crm", BP_KIND(1, 1), "c", 1));
    CHECK_OK(bp_tombstone(s, NULL, "user:3", "crm"));
    CHECK_FAILS(bp_tombstone(s, NULL, "batpak:x", "crm"), BP_EINVAL, "reserved");
    CHECK_FAILS(bp_tombstone(s, NULL, "", "crm"), BP_EINVAL, "entity");
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.max_age_ms = 1000;
    o.tombstoned = true;
    o.dry_run = true;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK(!rep.changed);
    CHECK_EQ(rep.events_removed, 3 + 2 + 2);
    CHECK_EQ(t_count_stream(s, "user:1"), 6); /* dry run: nothing changed */
    o.dry_run = false;
    o.max_age_ms = 1000 * 3600; /* an hour: only the tombstones drop anything */
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK_EQ(rep.events_removed, 4);
    CHECK_EQ(t_count_stream(s, "user:1"), 6);
    CHECK_EQ(t_count_stream(s, "user:2"), 1);
    CHECK_EQ(t_count_stream(s, "user:3"), 0);
    o.max_age_ms = 1000;
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK_EQ(rep.events_removed, 3);
    CHECK_EQ(t_count_stream(s, "user:1"), 3);
    bp_event *ev;
    CHECK_FAILS(bp_get(s, &ev, &old[2].event_id), BP_ENOTFOUND, "not found");
    CHECK_OK(bp_get(s, &ev, &young[0].event_id));
    if (ev) {
        CHECK_EQ(ev->clock, 4);
        CHECK(!memcmp(ev->prev_hash.b, old[2].event_hash.b, 32)); /* the anchor's hash */
        bp_event_free(ev);
    }
    uint64_t clock;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "user:3"));
    CHECK_EQ(clock, 2); /* the anchor keeps the chain's place */
    bp_receipt r3 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r3, "user:3", "crm", BP_KIND(1, 1), "again", 5));
    CHECK_EQ(r3.clock, 3);
    CHECK(verify_clean(s));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    CHECK(verify_clean(s));
    CHECK_EQ(t_count_stream(s, "user:3"), 1);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Rewrite DIR/ANCHORS with entity's anchor hash altered (CRC recomputed). */
static void tamper_anchor(const char *dir, const char *entity) {
    char path[1200];
    snprintf(path, sizeof path, "%s/ANCHORS", dir);
    uint8_t *buf;
    size_t len;
    CHECK_OK(bp_pf_read_all(path, &buf, &len) ? BP_EIO : BP_OK);
    bp_anchors a;
    CHECK_OK(bp_anchors_decode(&a, buf, len, path));
    for (uint32_t i = 0; i < a.n; i++)
        if (!strcmp(a.v[i].entity, entity)) a.v[i].hash.b[0] ^= 1;
    bp_buf b = {0};
    CHECK_EQ(bp_anchors_encode(&b, &a), 0);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b.data, 1, b.len, f) == b.len);
    if (f) fclose(f);
    bp_buf_free(&b);
    bp_anchors_free(&a);
    free(buf);
}

static void test_anchors_checked(void) {
    const char *dir = t_dir("compact-anchor");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    book b;
    memset(&b, 0, sizeof b);
    fill(s, &b, 30);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 3;
    CHECK_OK(bp_compact(s, NULL, &o));
    CHECK_OK(bp_store_close(s));
    tamper_anchor(dir, "acct:b");
    /* footers are trusted at open; verify reads everything */
    s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
    CHECK(strstr(vr.first_problem, "acct:b") && strstr(vr.first_problem, "prev_hash"));
    CHECK_OK(bp_store_close(s));
    /* a damaged file is refused at open */
    char path[1200];
    snprintf(path, sizeof path, "%s/ANCHORS", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 30, SEEK_SET);
        fputc(0x55, f);
        fclose(f);
    }
    CHECK(t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096}) != BP_OK && !s);
    CHECK(strstr(bp_last_error(), "ANCHORS") != NULL);
    /* and so is a missing first segment */
    unlink(path);
    CHECK(t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096}) != BP_OK && !s);
    CHECK(strstr(bp_last_error(), "first segment") != NULL);
    t_rmdir(dir);
}

typedef struct {
    int n;
} counter;

static bp_status count_fn(void *ctx, const bp_delivery *d) {
    (void)d;
    ((counter *)ctx)->n++;
    return BP_OK;
}

static void test_after_compaction(void) {
    const char *dir = t_dir("compact-after");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    bp_append_options ao = BP_APPEND_OPTIONS_INIT;
    ao.idempotency_key = "order-1";
    bp_receipt first = BP_RECEIPT_INIT, again = BP_RECEIPT_INIT;
    bp_batch_item it = {"order:1", "shop", BP_KIND(1, 1), "x", 1, &ao};
    CHECK_OK(bp_append_batch(s, &first, &it, 1));
    for (int i = 0; i < 40; i++)
        CHECK_OK(bp_append(s, NULL, "order:1", "shop", BP_KIND(1, 2), "payload-payload", 15));
    /* a checkpointed worker that handled the first event */
    bp_worker_config wc = BP_WORKER_CONFIG_INIT;
    wc.checkpoint_id = "w1";
    wc.batch = 1;
    counter c = {0};
    bp_region reg = BP_REGION_INIT;
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(s, &w, &reg, count_fn, &c, &wc));
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    do {
        usleep(1000);
        bp_worker_stats_get(w, &ws);
    } while (ws.position < 41);
    CHECK_OK(bp_worker_stop(w));
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 10;
    CHECK_OK(bp_compact(s, NULL, &o));
    /* the worker's position is a hole now: it starts from there */
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(s, NULL, "order:1", "shop", BP_KIND(1, 2), "more", 4));
    counter c2 = {0};
    CHECK_OK(bp_cursor_worker(s, &w, &reg, count_fn, &c2, &wc));
    do {
        usleep(1000);
        bp_worker_stats_get(w, &ws);
    } while (ws.position < 44);
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(c2.n, 3);
    /* the removed event's idempotency key is forgotten */
    CHECK_OK(bp_append_batch(s, &again, &it, 1));
    CHECK(!again.replayed);
    CHECK(again.global_seq > first.global_seq);
    /* a cursor from the start sees the kept events only */
    bp_cursor *cur;
    CHECK_OK(bp_cursor_open(s, &cur, &reg, 0));
    const bp_event *evs[64];
    size_t n = 0, total = 0;
    while (bp_cursor_next(cur, evs, 64, &n, 0) == BP_OK && n)
        total += n;
    CHECK_EQ(total, 10 + 3 + 1);
    bp_cursor_free(cur);
    CHECK(verify_clean(s));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_merge_and_bad_input(void) {
    const char *dir = t_dir("compact-merge");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    book b;
    memset(&b, 0, sizeof b);
    fill(s, &b, 40);
    char *before = export_all(s);
    CHECK_OK(bp_store_close(s));
    /* bigger files now: the small ones merge */
    s = t_open(dir, &(t_open_opts){.segment_size = 1 << 20});
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, NULL));
    CHECK(rep.changed);
    CHECK_EQ(rep.events_removed, 0);
    CHECK_EQ(rep.segments_after, 1);
    CHECK(rep.segments_before > 1);
    char *after = export_all(s);
    CHECK(after && !strcmp(before, after));
    CHECK(verify_clean(s));
    /* again: nothing to do */
    CHECK_OK(bp_compact(s, &rep, NULL));
    CHECK(!rep.changed);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.struct_size = 9;
    CHECK_FAILS(bp_compact(s, NULL, &o), BP_EINVAL, "struct_size");
    o.struct_size = sizeof o;
    o.keep_last = (uint64_t)1 << 40;
    CHECK_FAILS(bp_compact(s, NULL, &o), BP_EINVAL, "keep_last");
    CHECK_FAILS(bp_compact(NULL, NULL, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(s));
    bp_open_options ro = BP_OPEN_OPTIONS_INIT;
    ro.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &ro));
    CHECK_FAILS(bp_compact(s, NULL, NULL), BP_EREADONLY, "read-only");
    bp_compact_options dry = BP_COMPACT_OPTIONS_INIT; /* a dry run writes nothing: allowed */
    dry.dry_run = true;
    dry.keep_last = 1;
    bp_compact_report dr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &dr, &dry));
    CHECK(!dr.changed);
    CHECK_OK(bp_store_close(s));
    /* a damaged manifest is refused, not guessed at */
    char path[1200];
    snprintf(path, sizeof path, "%s/COMPACT", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite("BPCM garbage garbage garbage garbage", 1, 36, f) == 36);
    if (f) fclose(f);
    CHECK(t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096}) != BP_OK && !s);
    CHECK(strstr(bp_last_error(), "COMPACT") != NULL);
    unlink(path);
    free(before);
    free(after);
    t_rmdir(dir);
}

/* ---- readers and appenders while compactions run */

typedef struct race {
    bp_store *s;
    bool stop; /* atomic */
    uint64_t appended, read_errors;
} race;

static void *appender(void *arg) {
    race *r = arg;
    char p[64];
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int len = snprintf(p, sizeof p, "n=%llu", (unsigned long long)r->appended);
        if (bp_append(r->s, NULL, ENTS[r->appended % N_ENT], "ledger", BP_KIND(1, 1), p,
                      (size_t)len) != BP_OK)
            r->read_errors++;
        r->appended++;
    }
    return NULL;
}

static void *reader(void *arg) {
    race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        bp_iter *it;
        const bp_event *ev;
        bp_region reg = BP_REGION_INIT;
        if (bp_query(r->s, &it, &reg, 0) != BP_OK) {
            r->read_errors++;
            continue;
        }
        bp_status rc;
        uint64_t last = 0;
        while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
            if (ev->global_seq <= last) r->read_errors++;
            last = ev->global_seq;
        }
        if (rc != BP_DONE) r->read_errors++;
        bp_iter_free(it);
    }
    return NULL;
}

static void test_concurrent(void) {
    const char *dir = t_dir("compact-race");
    race r = {t_open(dir, &(t_open_opts){.segment_size = 8192}), false, 0, 0};
    pthread_t a, b;
    pthread_create(&a, NULL, appender, &r);
    pthread_create(&b, NULL, reader, &r);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 20;
    for (int i = 0; i < 6; i++) {
        usleep(30 * 1000);
        CHECK_OK(bp_compact(r.s, NULL, &o));
    }
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_EQ(r.read_errors, 0);
    CHECK(verify_clean(r.s));
    for (int e = 0; e < N_ENT; e++) {
        uint64_t clock;
        CHECK_OK(bp_entity_head(r.s, &clock, NULL, ENTS[e]));
        uint64_t n = t_count_stream(r.s, ENTS[e]);
        CHECK(n >= 20 || n == clock);
    }
    CHECK_OK(bp_store_close(r.s));
    t_rmdir(dir);
}

/* ---- events held across compactions (their bytes stay mapped) */

#define HOLD_ENTS 10
#define HOLD_LEN 1000

/* Payload of entity e's event at clock c: every byte depends on both. */
static void hold_payload(int e, uint64_t c, uint8_t *out) {
    for (size_t j = 0; j < HOLD_LEN; j++)
        out[j] = (uint8_t)(e * 31 + c * 7 + j * 13 + (j >> 8));
}

/* Every payload byte of ev is the one appended (entity and clock are copied, not mapped). */
static bool hold_intact(const bp_event *ev) {
    int e = -1;
    if (!ev || sscanf(ev->entity, "hold:%d", &e) != 1 || ev->payload_len != HOLD_LEN ||
        !ev->payload)
        return false;
    uint8_t want[HOLD_LEN];
    hold_payload(e, ev->clock, want);
    return memcmp(ev->payload, want, HOLD_LEN) == 0;
}

typedef struct hold_race {
    bp_store *s;
    bool stop;                 /* atomic */
    uint64_t compactions;      /* atomic: bp_compact runs finished */
    uint64_t appends;          /* atomic */
    uint64_t clock[HOLD_ENTS]; /* appender only */
    int errors;                /* atomic */
} hold_race;

static void hold_append(hold_race *r, int e) {
    uint8_t p[HOLD_LEN];
    char ent[32];
    snprintf(ent, sizeof ent, "hold:%d", e);
    hold_payload(e, ++r->clock[e], p);
    if (bp_append(r->s, NULL, ent, "hold", BP_KIND(1, 1), p, HOLD_LEN))
        __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->appends, 1, __ATOMIC_RELEASE);
}

static void *hold_appender(void *arg) {
    hold_race *r = arg;
    for (uint64_t i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && i < 200000; i++) {
        hold_append(r, (int)(i % HOLD_ENTS));
        if (i % 64 == 63) usleep(500); /* let the compactor and the holder run */
    }
    return NULL;
}

static void *hold_compactor(void *arg) {
    hold_race *r = arg;
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 2;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        if (bp_compact(r->s, NULL, &o)) __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&r->compactions, 1, __ATOMIC_RELEASE);
        usleep(1000);
    }
    return NULL;
}

/* Wait until every entity got more events than compaction keeps, then until a compaction
 * that started after that finished (it replaced every segment that held what was read
 * before, and dropped each entity's oldest event); false after 20 s. */
static bool hold_wait_compacted(hold_race *r) {
    uint64_t a0 = __atomic_load_n(&r->appends, __ATOMIC_ACQUIRE), c0 = 0;
    for (int i = 0; i < 20000; i++) {
        if (!c0 && __atomic_load_n(&r->appends, __ATOMIC_ACQUIRE) >= a0 + 4 * HOLD_ENTS)
            c0 = __atomic_load_n(&r->compactions, __ATOMIC_ACQUIRE) + 1;
        if (c0 && __atomic_load_n(&r->compactions, __ATOMIC_ACQUIRE) >= c0 + 2) return true;
        usleep(1000);
    }
    return false;
}

/* The oldest published event of entity e (its id), via an index-only stream. */
static bool oldest_of(bp_store *s, int e, bp_id *id) {
    char ent[32];
    snprintf(ent, sizeof ent, "hold:%d", e);
    bp_iter *it;
    const bp_event *ev;
    if (bp_stream(s, &it, ent, BP_READ_INDEX_ONLY)) return false;
    bool ok = bp_iter_next(it, &ev) == BP_OK;
    if (ok) *id = ev->event_id;
    bp_iter_free(it);
    return ok;
}

typedef struct hold_worker_ctx {
    hold_race *r;
    int seen; /* deliveries checked across a compaction */
    int bad;
} hold_worker_ctx;

/* A worker's delivery (and a replay's event) is valid during the call: hold it across two
 * compactions for its first few events, then check every byte. */
static bp_status hold_deliver(void *ctx, const bp_delivery *d) {
    hold_worker_ctx *w = ctx;
    if (__atomic_load_n(&w->seen, __ATOMIC_ACQUIRE) >= 3) return BP_OK;
    if (!hold_wait_compacted(w->r) || !hold_intact(d->ev)) w->bad++;
    __atomic_add_fetch(&w->seen, 1, __ATOMIC_RELEASE);
    return BP_OK;
}

static bp_status hold_replay(void *ctx, const bp_event *ev, const char *json, size_t json_len) {
    (void)json;
    (void)json_len;
    hold_worker_ctx *w = ctx;
    if (!hold_wait_compacted(w->r) || !hold_intact(ev)) w->bad++;
    w->seen++;
    return BP_DONE; /* one is enough: stops the replay */
}

/* Every event the API hands out stays valid for its stated lifetime whatever
 * compaction does (issue: a held payload was unmapped, SIGSEGV). 64 KiB segments, 1,000-byte
 * payloads over 10 entities, bp_compact(keep_last = 2) in a loop on another thread while this
 * one holds a bp_get event, an iterator's event, a cursor batch, a worker's delivery and a
 * raw replay's event, each across two compactions, and reads every payload byte. */
static void test_held_events_survive_compaction(void) {
    const char *dir = t_dir("compact-hold");
    hold_race r;
    memset(&r, 0, sizeof r);
    r.s = t_open(dir, &(t_open_opts){.segment_size = 64 * 1024});
    for (int i = 0; i < 2000; i++)
        hold_append(&r, i % HOLD_ENTS);
    pthread_t a, c;
    pthread_create(&a, NULL, hold_appender, &r);
    pthread_create(&c, NULL, hold_compactor, &r);
    int rounds = 0;
    for (int round = 0; round < 6; round++) {
        int e = round % HOLD_ENTS, e2 = (round + 3) % HOLD_ENTS;
        bp_id id;
        CHECK(oldest_of(r.s, e, &id));
        bp_event *got = NULL;
        bp_status grc = bp_get(r.s, &got, &id);
        if (grc == BP_ENOTFOUND) continue; /* compacted away between the two reads */
        CHECK_OK(grc);
        char ent[32];
        snprintf(ent, sizeof ent, "hold:%d", e2);
        bp_iter *it;
        const bp_event *iev;
        CHECK_OK(bp_stream(r.s, &it, ent, BP_READ_FULL));
        CHECK_OK(bp_iter_next(it, &iev));
        bp_region reg = BP_REGION_INIT;
        reg.entity_prefix = "hold:";
        bp_cursor *cur;
        CHECK_OK(bp_cursor_open(r.s, &cur, &reg, 0));
        const bp_event *batch[16];
        size_t nb = 0;
        CHECK_OK(bp_cursor_next(cur, batch, 16, &nb, 0));
        CHECK(nb > 0);
        CHECK(hold_wait_compacted(&r));
        /* the first event read is gone from the store now: its bytes are still there */
        bp_event *again = NULL;
        CHECK_FAILS(bp_get(r.s, &again, &id), BP_ENOTFOUND, "not found");
        CHECK(hold_intact(got));
        CHECK(hold_intact(iev));
        for (size_t i = 0; i < nb; i++)
            CHECK(hold_intact(batch[i]));
        bp_event_free(got);
        bp_iter_free(it);
        bp_cursor_free(cur);
        rounds++;
    }
    CHECK(rounds >= 3);
    /* a worker's delivery and a raw replay's event, held inside the call */
    hold_worker_ctx wc = {&r, 0, 0};
    bp_region all = BP_REGION_INIT;
    all.entity_prefix = "hold:";
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(r.s, &w, &all, hold_deliver, &wc, NULL));
    for (int i = 0; i < 30000 && __atomic_load_n(&wc.seen, __ATOMIC_ACQUIRE) < 3; i++)
        usleep(1000);
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(wc.seen, 3);
    CHECK_EQ(wc.bad, 0);
    hold_worker_ctx rc = {&r, 0, 0};
    CHECK_OK(bp_replay(r.s, &all, BP_LANE_RAW, hold_replay, &rc)); /* BP_DONE stops it */
    CHECK_EQ(rc.seen, 1);
    CHECK_EQ(rc.bad, 0);
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    pthread_join(a, NULL);
    pthread_join(c, NULL);
    CHECK_EQ(r.errors, 0);
    CHECK(verify_clean(r.s));
    CHECK_OK(bp_store_close(r.s));
    t_rmdir(dir);
}

/* The same on one thread: hold events, compact, read them (no deadlock: compaction never
 * waits for a reader), then again after the store dropped every segment they were in. */
static void test_hold_then_compact_same_thread(void) {
    const char *dir = t_dir("compact-hold1");
    hold_race r;
    memset(&r, 0, sizeof r);
    r.s = t_open(dir, &(t_open_opts){.segment_size = 64 * 1024});
    for (int i = 0; i < 2000; i++)
        hold_append(&r, i % HOLD_ENTS);
    bp_id id;
    CHECK(oldest_of(r.s, 0, &id));
    bp_event *got;
    CHECK_OK(bp_get(r.s, &got, &id));
    bp_iter *it;
    const bp_event *iev;
    CHECK_OK(bp_stream(r.s, &it, "hold:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &iev));
    bp_iter *it2; /* index-only: no bytes held */
    const bp_event *xev;
    CHECK_OK(bp_stream(r.s, &it2, "hold:2", BP_READ_INDEX_ONLY));
    CHECK_OK(bp_iter_next(it2, &xev));
    bp_region reg = BP_REGION_INIT;
    reg.entity = "hold:3";
    bp_cursor *cur;
    CHECK_OK(bp_cursor_open(r.s, &cur, &reg, 0));
    const bp_event *batch[8];
    size_t nb;
    CHECK_OK(bp_cursor_next(cur, batch, 8, &nb, 0));
    CHECK_EQ(nb, 8);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 2;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(r.s, &rep, &o));
    CHECK(rep.changed);
    CHECK_EQ(rep.events_kept, 2 * HOLD_ENTS);
    CHECK(hold_intact(got));
    CHECK(hold_intact(iev));
    CHECK(strcmp(xev->entity, "hold:2") == 0);
    for (size_t i = 0; i < nb; i++)
        CHECK(hold_intact(batch[i]));
    /* the iterator goes on with its own entity's events (the new index numbers entities
     * anew: it looks its entity up again), those the compaction kept */
    bp_status nrc;
    uint64_t last_clock = iev->clock;
    while ((nrc = bp_iter_next(it, &iev)) == BP_OK) {
        CHECK(strcmp(iev->entity, "hold:1") == 0);
        CHECK(iev->clock > last_clock);
        last_clock = iev->clock;
    }
    CHECK(nrc == BP_DONE || nrc == BP_EIO || nrc == BP_ECORRUPT);
    /* appends go on into new segments, and compaction again, while got is still held */
    for (int i = 0; i < 200; i++)
        hold_append(&r, i % HOLD_ENTS);
    CHECK_OK(bp_compact(r.s, &rep, &o));
    CHECK(hold_intact(got));
    bp_event_free(got);
    bp_iter_free(it);
    bp_iter_free(it2);
    bp_cursor_free(cur);
    CHECK(verify_clean(r.s));
    CHECK_OK(bp_store_close(r.s));
    t_rmdir(dir);
}

/* ---- crash safety */

static const char *g_template;
static char *g_before, *g_after;

static void make_template(void) {
    g_template = t_dir("compact-tpl");
    bp_store *s = t_open(g_template, &(t_open_opts){.segment_size = 4096});
    book b;
    memset(&b, 0, sizeof b);
    fill(s, &b, 40);
    g_before = export_all(s);
    CHECK_OK(bp_store_close(s));
    const char *d = t_dir("compact-after-ref");
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", d, g_template, d);
    CHECK_EQ(system(cmd), 0);
    s = t_open(d, &(t_open_opts){.segment_size = 4096});
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 4;
    CHECK_OK(bp_compact(s, NULL, &o));
    g_after = export_all(s);
    CHECK_OK(bp_store_close(s));
    CHECK(strcmp(g_before, g_after) != 0);
    t_rmdir(d);
}

static void copy_template(const char *dst) {
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dst, g_template, dst);
    if (system(cmd) != 0) exit(2);
}

/* After a crash: the store opens, verifies, and is exactly the before or the after state.
 * Returns 0 before, 1 after, -1 neither. */
static int outcome(const char *dir) {
    bp_store *s;
    if (t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096})) {
        fprintf(stderr, "reopen: %s\n", bp_last_error());
        return -1;
    }
    int r = -1;
    char *now = export_all(s);
    if (now && !strcmp(now, g_before)) r = 0;
    if (now && !strcmp(now, g_after)) r = 1;
    if (!verify_clean(s)) r = -1;
    /* and it goes on: an append and a clean close */
    if (bp_append(s, NULL, "acct:a", "ledger", BP_KIND(1, 1), "z", 1) != BP_OK) r = -1;
    if (bp_store_close(s) != BP_OK) r = -1;
    free(now);
    return r;
}

static int g_kill_at;
static void killer(int step) {
    if (step == g_kill_at) kill(getpid(), SIGKILL);
}

static void test_sigkill_every_step(void) {
    const int steps[] = {1, 2, 3, 10, 100, 101, 20, 21, -1};
    const char *dir = t_dir("compact-kill");
    int befores = 0, afters = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        copy_template(dir);
        pid_t pid = fork();
        if (pid == 0) {
            g_kill_at = steps[i];
            bp__compact_step = killer;
            bp_store *s;
            bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
            o.keep_last = 4;
            if (t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096}) ||
                bp_compact(s, NULL, &o) != BP_OK)
                _exit(3);
            _exit(bp_store_close(s) == BP_OK ? 0 : 4);
        }
        int st;
        waitpid(pid, &st, 0);
        bool killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        CHECK(killed || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
        /* a read-only open first: it shows what the next writer's open will (from the
         * manifest on, the compacted store, read in place) and renames nothing */
        bp_store *ro;
        CHECK_OK(t_open_try(&ro, dir, &(t_open_opts){.read_only = true, .no_create = true}));
        char *seen = ro ? export_all(ro) : NULL;
        int rr = seen && !strcmp(seen, g_before) ? 0 : seen && !strcmp(seen, g_after) ? 1 : -1;
        if (!ro || rr != (steps[i] >= 1 && steps[i] <= 3 ? 0 : 1))
            fprintf(stderr, "read-only open after a kill at step %d\n", steps[i]);
        CHECK_EQ(rr, steps[i] >= 1 && steps[i] <= 3 ? 0 : 1);
        free(seen);
        CHECK_OK(bp_store_close(ro));
        int r = outcome(dir);
        if (r < 0) fprintf(stderr, "kill at step %d: neither before nor after\n", steps[i]);
        CHECK(r >= 0);
        /* before the manifest: before; from the manifest on: after */
        CHECK_EQ(r, steps[i] >= 1 && steps[i] <= 3 ? 0 : 1);
        befores += r == 0;
        afters += r == 1;
    }
    fprintf(stderr, "  sigkill: %d steps, %d before, %d after\n",
            (int)(sizeof steps / sizeof *steps), befores, afters);
    t_rmdir(dir);
}

typedef enum { F_WRITE, F_SYNC, F_RENAME, F_OPEN, F_SHORT } fkind;

static void test_fault_sweep(void) {
    const char *dir = t_dir("compact-fault");
    const char *names[] = {"write", "sync", "rename", "open", "short write"};
    int runs = 0, befores = 0, afters = 0;
    for (int k = F_WRITE; k <= F_SHORT; k++) {
        for (uint64_t n = 1; n < 400; n++) {
            copy_template(dir);
            bp_fault f;
            bp_fault_init(&f);
            if (k == F_WRITE) f.fail_write_at = n;
            if (k == F_SYNC) f.fail_sync_at = n;
            if (k == F_RENAME) f.fail_rename_at = n;
            if (k == F_OPEN) f.fail_open_at = n;
            if (k == F_SHORT) f.short_write_at = n;
            bp_store *s;
            if (t_open_try(&s, dir, &(t_open_opts){.segment_size = 4096, .fault = &f})) {
                /* the fault hit the open itself */
                bp_fault_destroy(&f);
                continue;
            }
            bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
            o.keep_last = 4;
            bp_status rc = bp_compact(s, NULL, &o);
            bool tripped = f.tripped > 0;
            if (getenv("BP_DEBUG_SWEEP"))
                fprintf(stderr, "%s %llu: rc %d %s\n", names[k], (unsigned long long)n, rc,
                        rc ? bp_last_error() : "");
            bp__store_crash(s); /* then the power goes */
            bp_fault_power_loss(&f);
            bp_fault_destroy(&f);
            int r = outcome(dir);
            if (r < 0)
                fprintf(stderr, "%s fault %llu: neither before nor after\n", names[k],
                        (unsigned long long)n);
            CHECK(r >= 0);
            if (rc == BP_OK) CHECK_EQ(r, 1); /* acknowledged: it survives the power cut */
            runs++;
            befores += r == 0;
            afters += r == 1;
            if (!tripped) break; /* the compaction made fewer calls than n */
        }
    }
    fprintf(stderr, "  fault sweep: %d runs, %d before, %d after\n", runs, befores, afters);
    CHECK(befores > 0 && afters > 0);
    t_rmdir(dir);
}

typedef struct reenter {
    bp_store *s;
    int calls;
    bp_status inner, append;
    char msg[512];
} reenter;

static void progress_reenters(void *ctx, uint64_t done, uint64_t total) {
    (void)done;
    (void)total;
    reenter *r = ctx;
    if (r->calls++) return;
    r->inner = bp_compact(r->s, NULL, NULL); /* would wait for the lock this thread holds */
    snprintf(r->msg, sizeof r->msg, "%s", bp_last_error());
    r->append = bp_append(r->s, NULL, "late:1", "s", BP_KIND(1, 1), "x", 1); /* allowed */
}

/* bp_compact from its own progress callback is refused (no deadlock: alarm() ends the
 * test if it hangs); appending from there works, and the outer compaction completes. */
static void test_compact_from_progress(void) {
    const char *dir = t_dir("compact-reenter");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096});
    for (int i = 0; i < 200; i++)
        CHECK_OK(bp_append(s, NULL, i % 2 ? "a:1" : "a:2", "s", BP_KIND(1, 1), "payload", 7));
    reenter r = {.s = s};
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 3;
    o.progress = progress_reenters;
    o.progress_ctx = &r;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    alarm(60);
    CHECK_OK(bp_compact(s, &rep, &o));
    alarm(0);
    CHECK(r.calls >= 2);
    CHECK_EQ(r.inner, BP_EBUSY);
    CHECK(strstr(r.msg, "called from its own progress callback"));
    CHECK_OK(r.append);
    CHECK(rep.events_removed > 0);
    CHECK_OK(bp_compact(s, NULL, NULL)); /* and afterwards, from the same thread, it runs */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_keep_last);
    RUN(test_compact_from_progress);
    RUN(test_age_and_tombstone);
    RUN(test_anchors_checked);
    RUN(test_after_compaction);
    RUN(test_merge_and_bad_input);
    RUN(test_concurrent);
    RUN(test_held_events_survive_compaction);
    RUN(test_hold_then_compact_same_thread);
    make_template();
    RUN(test_sigkill_every_step);
    RUN(test_fault_sweep);
    t_rmdir(g_template);
    free(g_before);
    free(g_after);
    T_DONE();
}
