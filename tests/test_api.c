/* Round trips through every public function of batpak/common.h, store.h and
 * read.h, with the data-model guarantees (doc/GUIDE.md, doc/FORMAT.md) checked on what they
 * return: UUIDv7 ids, a monotonic HLC with a working logical counter,
 * gap-free clocks, a dense global sequence, per-entity hash chains. */
#include "t.h"

#include <time.h>

static size_t count(bp_iter *it, uint64_t *first, uint64_t *last) {
    const bp_event *e;
    size_t n = 0;
    *first = *last = 0;
    while (bp_iter_next(it, &e) == BP_OK) {
        if (!n) *first = e->global_seq;
        *last = e->global_seq;
        n++;
    }
    bp_iter_free(it);
    return n;
}

static void test_common(void) {
    CHECK(strcmp(bp_version(), BP_VERSION_STRING) == 0);
    /* every status has its own description */
    for (int a = BP_ESIGNATURE; a <= BP_DONE; a++) {
        CHECK(bp_strerror(a) != NULL && bp_strerror(a)[0]);
        for (int b = a + 1; b <= BP_DONE; b++)
            CHECK(strcmp(bp_strerror(a), bp_strerror(b)) != 0);
    }
    CHECK(bp_strerror(-999) != NULL);
    /* kinds */
    CHECK_EQ(BP_KIND(0x1, 0x23), 0x1023);
    CHECK_EQ(BP_KIND_CATEGORY(0xA123), 0xA);
    CHECK_EQ(BP_KIND_TYPE(0xA123), 0x123);
    CHECK(!bp_kind_is_application(BP_KIND_SYSTEM_OPEN_COMPLETED));
    CHECK(!bp_kind_is_application(BP_KIND(BP_CATEGORY_EFFECT, 1)));
    for (unsigned c = 1; c <= 0xF; c++)
        if (c != BP_CATEGORY_EFFECT) CHECK(bp_kind_is_application(BP_KIND(c, 0xFFF)));
    /* coordinates */
    CHECK_OK(bp_coord_validate("entity", "order:1"));
    CHECK_OK(bp_coord_validate("entity", "z\xc3\xbcrich")); /* UTF-8 */
    CHECK_EQ(bp_coord_validate("entity", ""), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "entity") != NULL);
    CHECK_EQ(bp_coord_validate("scope", "\xff"), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "scope") != NULL);
    /* ids and hashes */
    bp_id id;
    CHECK_OK(bp_id_parse(&id, "01020304-0506-7708-890a-0b0c0d0e0f10"));
    char t[37];
    bp_id_format(&id, t);
    CHECK(strcmp(t, "01020304-0506-7708-890a-0b0c0d0e0f10") == 0);
    bp_id id2;
    CHECK_OK(bp_id_parse(&id2, "0102030405067708890A0B0C0D0E0F10"));
    CHECK(memcmp(&id, &id2, 16) == 0);
    CHECK_EQ(bp_id_time_ms(&id), 0x010203040506ll);
    bp_hash h;
    for (int i = 0; i < 32; i++)
        h.b[i] = (uint8_t)(i * 17);
    char ht[65];
    bp_hash_format(&h, ht);
    CHECK_EQ(strlen(ht), 64);
    CHECK(strncmp(ht, "00112233", 8) == 0);
    CHECK_EQ(BP_HLC_WALL_MS(((uint64_t)1234 << 16) | 7), 1234);
    CHECK_EQ(BP_HLC_LOGICAL(((uint64_t)1234 << 16) | 7), 7);
    /* the last error is per call: a success after a failure does not matter,
     * the message stays until the next failure */
    CHECK_EQ(bp_id_parse(&id, "nope"), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "nope") != NULL);
}

static void test_ids_hlc_clocks_chain(void) {
    const char *dir = t_dir("api-model");
    bp_store *s = t_open(dir, NULL);
    CHECK(s);
    enum { N = 2000 };
    static bp_receipt r[N] = {BP_RECEIPT_INIT};
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < N; i++) {
        char p[16];
        int n = snprintf(p, sizeof p, "%d", i);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        CHECK_OK(bp_append_ex(s, &r[i], i % 3 ? "m:x" : "m:y", "model", 0x1001, p, (size_t)n, &o));
    }
    bool logical_used = false;
    uint64_t now = (uint64_t)time(NULL) * 1000;
    for (int i = 0; i < N; i++) {
        const uint8_t *u = r[i].event_id.b;
        CHECK_EQ(u[6] >> 4, 7);           /* UUID version 7 */
        CHECK_EQ(u[8] >> 6, 2);           /* RFC 9562 variant */
        CHECK_EQ(r[i].global_seq, i + 1); /* dense from 1 */
        uint64_t ms = bp_id_time_ms(&r[i].event_id);
        CHECK(ms + 60000 > now && ms < now + 60000);
        if (i) {
            CHECK(memcmp(u, r[i - 1].event_id.b, 16) > 0); /* time-ordered, strictly */
            CHECK(r[i].hlc > r[i - 1].hlc);                /* monotonic */
            if (BP_HLC_WALL_MS(r[i].hlc) == BP_HLC_WALL_MS(r[i - 1].hlc)) {
                CHECK_EQ(BP_HLC_LOGICAL(r[i].hlc), BP_HLC_LOGICAL(r[i - 1].hlc) + 1);
                logical_used = true;
            }
        }
    }
    CHECK(logical_used); /* 2000 appends cannot all fall in different milliseconds */
    CHECK_OK(bp_store_close(s));

    /* after reopen: chain and clocks per entity, hashes unchanged */
    s = t_open(dir, &(t_open_opts){.read_only = true});
    CHECK(s);
    const char *ents[2] = {"m:x", "m:y"};
    for (int k = 0; k < 2; k++) {
        bp_iter *it;
        CHECK_OK(bp_stream(s, &it, ents[k], BP_READ_FULL));
        const bp_event *e;
        bp_hash prev;
        memset(&prev, 0, sizeof prev);
        uint64_t clock = 0;
        while (bp_iter_next(it, &e) == BP_OK) {
            CHECK_EQ(e->clock, ++clock);
            CHECK(memcmp(e->prev_hash.b, prev.b, 32) == 0);
            CHECK(memcmp(e->event_hash.b, r[e->global_seq - 1].event_hash.b, 32) == 0);
            CHECK(strcmp(e->entity, ents[k]) == 0);
            prev = e->event_hash;
        }
        bp_iter_free(it);
        CHECK_EQ(clock, k == 0 ? N - (N + 2) / 3 : (N + 2) / 3);
        uint64_t hc;
        bp_hash hh;
        CHECK_OK(bp_entity_head(s, &hc, &hh, ents[k]));
        CHECK_EQ(hc, clock);
        CHECK(memcmp(hh.b, prev.b, 32) == 0);
    }
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, N);
    CHECK_EQ(vr.entities, 2);
    CHECK_EQ(vr.problems, 0);
    CHECK_EQ(vr.first_problem[0], 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_lifecycle_and_open_event(void) {
    const char *dir = t_dir("api-life");
    bp_store *s = t_open(dir, &(t_open_opts){.open_event = true});
    CHECK(s);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.created);
    CHECK(!rep.checkpoint_used);
    CHECK(rep.checkpoint_note[0]);
    CHECK_EQ(rep.events, 0); /* found by recovery, before its own open event */
    CHECK(strcmp(bp_store_dir(s), dir) == 0);
    uint8_t uuid[16], uuid2[16], zero[16] = {0};
    bp_store_uuid(s, uuid);
    CHECK(memcmp(uuid, zero, 16) != 0);
    CHECK_OK(bp_append(s, NULL, "a", "s", 0x1001, "x", 1));
    CHECK_OK(bp_store_sync(s));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    uint32_t segs = st.segments;
    CHECK_OK(bp_store_close(s));

    /* second mutable open: a second open event, no new segment, same identity */
    s = t_open(dir, &(t_open_opts){.open_event = true});
    CHECK(s);
    bp_store_open_report_get(s, &rep);
    CHECK(!rep.created);
    CHECK(rep.checkpoint_used);
    CHECK_EQ(rep.frames_scanned, 0); /* the checkpoint covers everything: nothing rescanned */
    CHECK_EQ(rep.bytes_cut, 0);
    CHECK_EQ(rep.events, 2);
    bp_store_uuid(s, uuid2);
    CHECK(memcmp(uuid, uuid2, 16) == 0);
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.segments, segs);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "batpak:store", BP_READ_FULL));
    const bp_event *e;
    int opens = 0;
    while (bp_iter_next(it, &e) == BP_OK) {
        CHECK_EQ(e->kind, BP_KIND_SYSTEM_OPEN_COMPLETED);
        CHECK(strcmp(e->scope, "batpak:lifecycle") == 0);
        CHECK(e->payload_len > 0);
        opens++;
    }
    bp_iter_free(it);
    CHECK_EQ(opens, 2);
    CHECK_OK(bp_store_close(s));

    /* read-only: no open event, no writes */
    s = t_open(dir, &(t_open_opts){.read_only = true, .open_event = true});
    CHECK(s);
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 3);
    CHECK(st.read_only);
    CHECK_EQ(bp_append(s, NULL, "a", "s", 0x1001, "x", 1), BP_EREADONLY);
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp_store_close(s));
    CHECK_OK(bp_store_close(NULL));
    bp_event_free(NULL);
    bp_iter_free(NULL);
    t_rmdir(dir);
}

static void test_append_options(void) {
    const char *dir = t_dir("api-opts");
    bp_store *s = t_open(dir, NULL);
    CHECK(s);
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT, r3 = BP_RECEIPT_INIT;
    /* CAS: expected 0 on a new entity, then the head */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 0;
    CHECK_OK(bp_append_ex(s, &r1, "cas:1", "s", 0x1001, "a", 1, &o));
    o.expected_clock = 1;
    CHECK_OK(bp_append_ex(s, &r2, "cas:1", "s", 0x1001, "b", 1, &o));
    CHECK_EQ(r2.clock, 2);
    CHECK_EQ(bp_append_ex(s, &r3, "cas:1", "s", 0x1001, "c", 1, &o), BP_ECONFLICT);
    CHECK(strstr(bp_last_error(), "cas:1") != NULL);
    /* correlation and causation */
    bp_append_options oc = BP_APPEND_OPTIONS_INIT;
    oc.correlation_id = &r1.event_id;
    oc.causation_id = &r2.event_id;
    CHECK_OK(bp_append_ex(s, &r3, "cas:2", "s", 0x1001, "c", 1, &oc));
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r3.event_id));
    CHECK(memcmp(ev->correlation_id.b, r1.event_id.b, 16) == 0);
    CHECK(ev->has_causation);
    CHECK(memcmp(ev->causation_id.b, r2.event_id.b, 16) == 0);
    bp_event_free(ev);
    CHECK_OK(bp_get(s, &ev, &r1.event_id));
    CHECK(memcmp(ev->correlation_id.b, r1.event_id.b, 16) == 0); /* defaults to its own id */
    CHECK(!ev->has_causation);
    bp_event_free(ev);
    /* idempotency: replay within the session and after a restart */
    bp_append_options oi = BP_APPEND_OPTIONS_INIT;
    oi.idempotency_key = "order-42-created";
    bp_receipt k1 = BP_RECEIPT_INIT, k2 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &k1, "idem:1", "s", 0x1001, "p", 1, &oi));
    CHECK(!k1.replayed);
    CHECK_OK(bp_append_ex(s, &k2, "idem:1", "s", 0x1001, "p", 1, &oi));
    CHECK(k2.replayed);
    CHECK(memcmp(&k1.event_id, &k2.event_id, 16) == 0);
    CHECK(memcmp(&k1.event_hash, &k2.event_hash, 32) == 0);
    CHECK_EQ(k2.global_seq, k1.global_seq);
    CHECK_EQ(k2.clock, k1.clock);
    CHECK_OK(bp_get(s, &ev, &k1.event_id));
    CHECK(ev->idempotency_key && strcmp(ev->idempotency_key, "order-42-created") == 0);
    bp_event_free(ev);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    uint64_t events = st.events;
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, NULL);
    CHECK(s);
    CHECK_OK(bp_append_ex(s, &k2, "idem:1", "s", 0x1001, "p", 1, &oi));
    CHECK(k2.replayed);
    CHECK(memcmp(&k1.event_id, &k2.event_id, 16) == 0);
    CHECK_EQ(k2.durability, BP_DUR_SYNC);
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, events);
    /* the key cannot move to another entity */
    CHECK_EQ(bp_append_ex(s, &k2, "idem:2", "s", 0x1001, "p", 1, &oi), BP_ECONFLICT);
    CHECK_OK(bp_store_close(s));
    /* again without the checkpoint: keys are rebuilt from the frames */
    char p[1200];
    snprintf(p, sizeof p, "%s/index.ckpt", dir);
    CHECK_EQ(unlink(p), 0);
    s = t_open(dir, NULL);
    CHECK(s);
    CHECK_OK(bp_append_ex(s, &k2, "idem:1", "s", 0x1001, "p", 1, &oi));
    CHECK(k2.replayed);
    CHECK(memcmp(&k1.event_id, &k2.event_id, 16) == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_batch(void) {
    const char *dir = t_dir("api-batch");
    bp_store *s = t_open(dir, NULL);
    CHECK(s);
    CHECK_OK(bp_append(s, NULL, "b:1", "s", 0x1001, "0", 1));
    bp_append_options cas1 = BP_APPEND_OPTIONS_INIT, cas2 = BP_APPEND_OPTIONS_INIT;
    cas1.has_expected_clock = true;
    cas1.expected_clock = 1;
    cas2.has_expected_clock = true;
    cas2.expected_clock = 2; /* sees the batch's own first item */
    bp_batch_item items[3] = {{"b:1", "s", 0x1001, "1", 1, &cas1},
                              {"b:2", "s", 0x2001, "2", 1, NULL},
                              {"b:1", "s", 0x1001, "3", 1, &cas2}};
    bp_receipt r[3];
    t_receipts(r, sizeof r / sizeof r[0]);
    CHECK_OK(bp_append_batch(s, r, items, 3));
    CHECK_EQ(r[0].clock, 2);
    CHECK_EQ(r[1].clock, 1);
    CHECK_EQ(r[2].clock, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(r[i].global_seq, 2 + i);
        CHECK_EQ(r[i].durability, BP_DUR_SYNC);
        bp_event *ev;
        CHECK_OK(bp_get(s, &ev, &r[i].event_id));
        CHECK_EQ(ev->batch_id, 2);
        CHECK_EQ(ev->batch_index, i);
        CHECK_EQ(ev->batch_count, 3);
        bp_event_free(ev);
    }
    /* the chain runs through the batch */
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r[2].event_id));
    CHECK(memcmp(ev->prev_hash.b, r[0].event_hash.b, 32) == 0);
    bp_event_free(ev);
    /* a conflict on the last item writes nothing */
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(bp_append_batch(s, r, items, 3), BP_ECONFLICT);
    CHECK(strstr(bp_last_error(), "batch item 0") != NULL);
    bp_store_stats st2 = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st2));
    CHECK_EQ(st2.events, st.events);
    /* idempotent batches replay as a whole */
    bp_append_options k[2] = {BP_APPEND_OPTIONS_INIT, BP_APPEND_OPTIONS_INIT};
    k[0].idempotency_key = "batch-k0";
    k[1].idempotency_key = "batch-k1";
    bp_batch_item kb[2] = {{"b:3", "s", 0x1001, "a", 1, &k[0]},
                           {"b:4", "s", 0x1001, "b", 1, &k[1]}};
    bp_receipt kr[2] = {BP_RECEIPT_INIT}, kr2[2] = {BP_RECEIPT_INIT};
    t_receipts(kr, sizeof kr / sizeof kr[0]);
    t_receipts(kr2, sizeof kr2 / sizeof kr2[0]);
    CHECK_OK(bp_append_batch(s, kr, kb, 2));
    CHECK_OK(bp_append_batch(s, kr2, kb, 2));
    CHECK(kr2[0].replayed && kr2[1].replayed);
    CHECK(memcmp(&kr[1].event_id, &kr2[1].event_id, 16) == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

typedef struct prog {
    int calls;
    uint64_t last, total;
    bool monotonic;
} prog;
static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    prog *p = ctx;
    if (p->calls++ && (done < p->last || total != p->total)) p->monotonic = false;
    p->last = done;
    p->total = total;
}

static void test_queries(void) {
    const char *dir = t_dir("api-query");
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 4096}); /* several segments */
    CHECK(s);
    uint64_t t0 = (uint64_t)time(NULL) * 1000 - 1000;
    for (int i = 0; i < 300; i++) {
        char ent[32], p[64];
        snprintf(ent, sizeof ent, "%s:%d", i % 2 ? "user" : "order", i % 5);
        int n = snprintf(p, sizeof p, "payload %d", i);
        uint16_t kind = (uint16_t)(i % 3 == 0 ? 0x1001 : i % 3 == 1 ? 0x1002 : 0x2001);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        CHECK_OK(bp_append_ex(s, NULL, ent, i % 4 ? "shop" : "bank", kind, p, (size_t)n, &o));
    }
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments > 3);
    CHECK_EQ(st.events, 300);
    CHECK_EQ(st.entities, 10);
    CHECK_EQ(st.scopes, 2);
    CHECK(st.bytes_on_disk > 300 * 40);
    CHECK(st.index_bytes > 0);
    CHECK_EQ(st.appends, 300);
    CHECK(st.write_p50_us <= st.write_p99_us && st.write_p99_us <= st.write_max_us);
    CHECK(!st.failed && !st.read_only);

    bp_iter *it;
    uint64_t first, last;
    bp_region r = BP_REGION_INIT;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 300);
    CHECK_EQ(first, 1);
    CHECK_EQ(last, 300);

    r.entity = "order:2"; /* i % 5 == 2 and i even: i = 2, 12, 22, ... */
    CHECK_OK(bp_query(s, &it, &r, BP_READ_FULL));
    CHECK_EQ(count(it, &first, &last), 30);
    CHECK_EQ(first, 3);
    r.entity = NULL;
    r.entity_prefix = "user:";
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 150);
    r.scope = "bank"; /* i % 4 == 0 is never odd */
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 0);
    r = (bp_region)BP_REGION_INIT;
    r.scope = "bank";
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 75);
    uint16_t kinds[2] = {0x1002, 0x2001};
    r = (bp_region)BP_REGION_INIT;
    r.kinds = kinds;
    r.n_kinds = 2;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 200);
    r = (bp_region)BP_REGION_INIT;
    r.category = 2;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 100);
    r = (bp_region)BP_REGION_INIT;
    r.from_seq = 101;
    r.to_seq = 150;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 50);
    CHECK_EQ(first, 101);
    CHECK_EQ(last, 150);
    r = (bp_region)BP_REGION_INIT;
    r.since_ms = t0;
    r.until_ms = t0 + 3600 * 1000;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 300);
    r.until_ms = t0 - 1;
    r.since_ms = 0;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 0);

    /* by scope / by kind / stream */
    CHECK_OK(bp_by_scope(s, &it, "shop", BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 225);
    CHECK_OK(bp_by_kind(s, &it, 0x1001, BP_READ_INDEX_ONLY));
    CHECK_EQ(count(it, &first, &last), 100);
    CHECK_OK(bp_stream(s, &it, "nobody", BP_READ_FULL));
    CHECK_EQ(count(it, &first, &last), 0);
    uint64_t c;
    bp_hash h;
    CHECK_OK(bp_entity_head(s, &c, &h, "nobody"));
    CHECK_EQ(c, 0);

    /* index-only events carry no payload; full ones do */
    CHECK_OK(bp_stream(s, &it, "order:0", BP_READ_INDEX_ONLY));
    const bp_event *e;
    CHECK_OK(bp_iter_next(it, &e));
    CHECK(e->header_only);
    CHECK(e->payload == NULL);
    CHECK(strcmp(e->entity, "order:0") == 0);
    CHECK(strcmp(e->scope, "bank") == 0);
    bp_iter_free(it);
    CHECK_OK(bp_stream(s, &it, "order:0", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &e));
    CHECK(!e->header_only);
    CHECK(e->payload_len == 9 && memcmp(e->payload, "payload 0", 9) == 0);
    bp_iter_free(it);

    /* verify with progress: from 0 to the total, once per segment */
    prog pr = {0, 0, 0, true};
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_verify_options vo = BP_VERIFY_OPTIONS_INIT;
    vo.progress = on_progress;
    vo.progress_ctx = &pr;
    CHECK_OK(bp_store_verify(s, &vr, &vo));
    CHECK_EQ(pr.calls, st.segments + 1);
    CHECK(pr.monotonic);
    CHECK(pr.total > 0);
    CHECK_EQ(pr.last, pr.total);

    /* paging: resume from the position, pages of 7 cover everything once */
    r = (bp_region)BP_REGION_INIT;
    r.entity_prefix = "order:";
    uint64_t seen = 0, prev = 0;
    for (;;) {
        CHECK_OK(bp_query(s, &it, &r, BP_READ_FULL));
        int k = 0;
        bp_status rc = BP_OK;
        while (k < 7 && (rc = bp_iter_next(it, &e)) == BP_OK) {
            CHECK(e->global_seq > prev);
            prev = e->global_seq;
            k++;
            seen++;
        }
        uint64_t pos = bp_iter_position(it);
        bp_iter_free(it);
        if (k == 0) break;
        CHECK_EQ(pos, prev);
        r.from_seq = pos + 1;
    }
    CHECK_EQ(seen, 150);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* verify reads segments through a 4 MiB window: frames that cross the
 * window's edge and a frame larger than the window are checked too, and
 * damage past the first window is found at its offset. */
static void test_verify_large_segment(void) {
    const char *dir = t_dir("api-bigseg");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    o.segment_size = 64u << 20;
    bp_store *s = NULL;
    CHECK_OK(bp_store_open(&s, dir, &o));
    size_t big = 5u << 20;
    uint8_t *p = malloc(big);
    CHECK(p);
    for (size_t i = 0; i < big; i++)
        p[i] = (uint8_t)(i * 31 + 7);
    bp_receipt last = BP_RECEIPT_INIT;
    for (int i = 0; i < 90; i++) /* ~9 MiB in frames of 100003 bytes */
        CHECK_OK(bp_append(s, &last, "big:1", "s", 0x1001, p, 100003));
    CHECK_OK(bp_append(s, NULL, "big:2", "s", 0x1001, p, big));
    CHECK_OK(bp_append(s, NULL, "big:1", "s", 0x1001, p, 10));
    free(p);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 92);
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));
    /* damage the 60th frame (well past the first 4 MiB) */
    char seg[1200];
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", dir);
    long off = 48 + 59L * (100003 + 60) + 5000; /* inside its payload, whatever the header size */
    FILE *f = fopen(seg, "r+b");
    CHECK(f);
    CHECK(fseek(f, off, SEEK_SET) == 0);
    int c = fgetc(f);
    CHECK(fseek(f, off, SEEK_SET) == 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    o.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &o)); /* the checkpoint covers it: found by verify */
    CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
    CHECK(vr.problems >= 1); /* the frame, then the events after it it could not reach */
    CHECK(strstr(vr.first_problem, "segment 000001 offset 5") != NULL); /* 5.8 MB in */
    CHECK_OK(bp_store_close(s));
    (void)last;
    t_rmdir(dir);
}

/* Rule 6 of doc/API.md: a struct the caller gives carries struct_size; another size (0, a
 * garbage value, another version's) is refused naming the struct, and nothing is done. */
static void test_struct_sizes(void) {
    const char *dir = t_dir("api-sizes");
    bp_store *s = t_open(dir, NULL);
    uint64_t before = t_count_stream(s, "e");
    const uint32_t bad[] = {0, 1, (uint32_t)sizeof(bp_receipt) + 8, 0xABABABABu};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        bp_receipt r = BP_RECEIPT_INIT;
        r.struct_size = bad[k];
        CHECK_FAILS(bp_append(s, &r, "e", "x", BP_KIND(1, 1), "a", 1), BP_EINVAL,
                    "bp_receipt.struct_size");
        bp_receipt rs[2] = {BP_RECEIPT_INIT, BP_RECEIPT_INIT};
        rs[0].struct_size = bad[k];
        bp_batch_item items[2] = {{"e", "x", BP_KIND(1, 1), "a", 1, NULL},
                                  {"e", "x", BP_KIND(1, 1), "b", 1, NULL}};
        CHECK_FAILS(bp_append_batch(s, rs, items, 2), BP_EINVAL, "BP_RECEIPT_INIT");
        bp_store_stats st = BP_STORE_STATS_INIT;
        st.struct_size = bad[k];
        CHECK_FAILS(bp_store_stats_get(s, &st), BP_EINVAL, "bp_store_stats.struct_size");
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        vr.struct_size = bad[k];
        CHECK_FAILS(bp_store_verify(s, &vr, NULL), BP_EINVAL, "bp_verify_report");
        bp_compact_report cr = BP_COMPACT_REPORT_INIT;
        cr.struct_size = bad[k];
        CHECK_FAILS(bp_compact(s, &cr, NULL), BP_EINVAL, "bp_compact_report");
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.struct_size = bad[k];
        CHECK_FAILS(bp_append_ex(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1, &o), BP_EINVAL,
                    "bp_append_options");
        bp_region rg = BP_REGION_INIT;
        rg.struct_size = bad[k];
        bp_iter *it;
        CHECK_FAILS(bp_query(s, &it, &rg, BP_READ_FULL), BP_EINVAL, "bp_region");
    }
    CHECK_EQ(t_count_stream(s, "e"), before); /* nothing was written */
    /* an array's stride is element 0's size; the library writes each element's */
    bp_receipt rs[3];
    memset(rs, 0, sizeof rs);
    rs[0].struct_size = sizeof rs[0];
    bp_batch_item items[3] = {{"e", "x", BP_KIND(1, 1), "a", 1, NULL},
                              {"e", "x", BP_KIND(1, 1), "b", 1, NULL},
                              {"f", "x", BP_KIND(1, 1), "c", 1, NULL}};
    CHECK_OK(bp_append_batch(s, rs, items, 3));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(rs[i].struct_size, sizeof rs[i]);
    CHECK_EQ(rs[2].global_seq, rs[0].global_seq + 2);
    CHECK(strcmp(rs[2].entity, "f") == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_common);
    RUN(test_ids_hlc_clocks_chain);
    RUN(test_lifecycle_and_open_event);
    RUN(test_append_options);
    RUN(test_batch);
    RUN(test_queries);
    RUN(test_verify_large_segment);
    RUN(test_struct_sizes);
    T_DONE();
}
