/* Segment index files (DIR/segments/NNNNNN.fidx) written by the store: at each seal, after a
 * compaction, and by a writable open for segments that lack a current one; never by a
 * read-only open; checked by verify against the frames. */
#include "t_six.h"
#include "store/store_impl.h"

#include <pthread.h>

static const char *g_dir;

static bool spit(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static void seg_path(uint32_t segno, const char *ext, char *out, size_t cap) {
    snprintf(out, cap, "%s/segments/%06u.%s", g_dir, segno, ext);
}

/* Flip bits at offset off of block b of segment segno's index file (its CRC then fails). */
static bool damage(uint32_t segno, unsigned b, uint32_t off, uint8_t bits) {
    char p[600];
    seg_path(segno, "fidx", p, sizeof p);
    size_t n = 0;
    uint8_t *buf = t_slurp(p, &n);
    bp_six x;
    bool ok = buf && bp_six_open(&x, buf, n, p) == BP_OK && x.len[b] > off;
    if (ok) buf[x.off[b] + off] ^= bits;
    ok = ok && spit(p, buf, n);
    free(buf);
    return ok;
}

/* How many segment files the store has (numbered from first). */
static uint32_t count_segments(uint32_t first) {
    uint32_t n = 0;
    for (;; n++) {
        char p[600];
        seg_path(first + n, "fbat", p, sizeof p);
        if (access(p, F_OK) != 0) return n;
    }
}

static bool six_current(uint32_t segno, bp_six *x, uint8_t **keep) {
    return t_six_current(g_dir, segno, x, keep);
}

static void fill(bp_store *s, int n, int from) {
    for (int i = from; i < from + n; i++) {
        char ent[32], scope[16], key[32], pay[48];
        snprintf(ent, sizeof ent, "acct:%d", i % 37);
        snprintf(scope, sizeof scope, "s%d", i % 3);
        snprintf(key, sizeof key, "key-%d", i);
        memset(pay, 'a' + i % 26, sizeof pay);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.idempotency_key = i % 10 == 0 ? key : NULL;
        o.durability = BP_NO_SYNC;
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_append_ex(s, &r, ent, scope, BP_KIND(1, i % 5), pay, sizeof pay, &o));
    }
}

/* Every record of segno's index file against the event bp_get reads by its id. */
static void check_against_store(bp_store *s, uint32_t segno) {
    bp_six x;
    uint8_t *buf = NULL;
    CHECK(six_current(segno, &x, &buf));
    uint64_t keyed = 0;
    for (uint32_t e = 0; e < x.n_ents; e++) {
        bp_six_ent en;
        bp_six_ent_get(&x, e, &en);
        CHECK_EQ(bp_six_find_ent(&x, en.name, en.len, NULL), e);
        for (uint32_t k = 0; k < en.count; k++) {
            uint32_t i = bp_six_post(&x, en.post + k);
            bp_six_rec r;
            bp_six_rec_get(&x, i, &r);
            bp_id id;
            bp_six_id(&x, i, &id);
            CHECK_EQ(bp_six_find_id(&x, &id), i);
            CHECK_EQ(bp_six_find_seq(&x, r.seq), i);
            bp_event *ev = NULL;
            CHECK_OK(bp_get(s, &ev, &id));
            CHECK_EQ(ev->global_seq, r.seq);
            CHECK_EQ(ev->clock, en.first_clock + k);
            CHECK_EQ(ev->kind, r.kind);
            CHECK(strlen(ev->entity) == en.len && !memcmp(ev->entity, en.name, en.len));
            const char *sn;
            uint16_t sl;
            uint32_t sc;
            bp_six_scope_get(&x, r.scope, &sn, &sl, &sc);
            CHECK(strlen(ev->scope) == sl && !memcmp(ev->scope, sn, sl));
            CHECK(bp_six_kind_count(&x, r.kind) > 0);
            if (ev->idempotency_key) {
                uint32_t lo, hi;
                bp_six_idem_range(&x,
                                  bp_six_key_hash(ev->idempotency_key, strlen(ev->idempotency_key)),
                                  &lo, &hi);
                CHECK(hi > lo);
                bool found = false;
                for (uint32_t j = lo; j < hi; j++)
                    found |= bp_six_idem_rec(&x, j) == i;
                CHECK(found);
                keyed++;
            }
            bp_event_free(ev);
        }
    }
    CHECK_EQ(keyed, x.n_idems);
    free(buf);
}

static void test_written_at_seal(void) {
    g_dir = t_dir("six-seal");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 3000, 0);
    uint32_t n = count_segments(1);
    CHECK(n >= 4);
    /* every sealed segment has its index file while the store is open: seal writes it */
    for (uint32_t k = 1; k < n; k++)
        check_against_store(s, k);
    char p[600];
    seg_path(n, "fidx", p, sizeof p);
    CHECK(access(p, F_OK) != 0); /* the active segment has none */
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* Missing, damaged and stale index files are written again by a writable open, not by a
 * read-only one. */
static void test_rebuilt_at_open(void) {
    g_dir = t_dir("six-rebuild");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 2000, 0);
    CHECK_OK(bp_store_close(s));
    uint32_t n = count_segments(1);
    CHECK(n >= 4);
    char p1[600], p2[600], p3[600];
    seg_path(1, "fidx", p1, sizeof p1);
    seg_path(2, "fidx", p2, sizeof p2);
    seg_path(3, "fidx", p3, sizeof p3);
    CHECK(unlink(p1) == 0);
    size_t n2 = 0, n3 = 0;
    uint8_t *b2 = t_slurp(p2, &n2), *b3 = t_slurp(p3, &n3);
    CHECK(b2 && b3 && n2 > 1000);
    uint8_t *b3copy = malloc(n3);
    CHECK(b3copy != NULL);
    memcpy(b3copy, b3, n3);
    CHECK(spit(p3, b2, n2)); /* segment 2's intact file as segment 3's: stale */
    b2[20] ^= 0x5a;          /* and segment 2's header damaged (a block's damage is found
                                when the block is first used, not at open) */
    CHECK(spit(p2, b2, n2));
    bp_six x;
    CHECK(!six_current(1, &x, NULL) && !six_current(2, &x, NULL) && !six_current(3, &x, NULL));

    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK(s != NULL);
    CHECK_OK(bp_store_close(s));
    CHECK(access(p1, F_OK) != 0); /* a reader never writes */
    size_t m = 0;
    uint8_t *again = t_slurp(p2, &m);
    CHECK(again && m == n2 && !memcmp(again, b2, n2));
    free(again);

    s = t_open(g_dir, NULL);
    for (uint32_t k = 1; k < count_segments(1); k++)
        check_against_store(s, k);
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    /* segment 3's file came back with the same bytes: an index file is a function of the
     * segment */
    size_t m3 = 0;
    uint8_t *now3 = t_slurp(p3, &m3);
    CHECK(now3 && m3 == n3 && !memcmp(now3, b3copy, n3));
    free(now3);
    free(b2);
    free(b3);
    free(b3copy);
    t_rmdir(g_dir);
}

/* An index file whose checks pass but which disagrees with its segment is a verify problem. */
static void test_verify_catches_a_wrong_index(void) {
    g_dir = t_dir("six-verify");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 1500, 0);
    CHECK_OK(bp_store_close(s));
    char p[600];
    seg_path(2, "fidx", p, sizeof p);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b != NULL);
    bp_six x;
    CHECK_OK(bp_six_open(&x, b, n, p));
    /* records 3 and the next one of another kind swap kinds: every count still holds */
    uint8_t *rec = b + x.off[BP_SIXB_RECS] + 3 * BP_SIX_REC_SIZE, *other = rec;
    uint16_t kind = bp_get_be16(rec + 10);
    while (bp_get_be16(other + 10) == kind)
        other += BP_SIX_REC_SIZE;
    bp_put_be16(rec + 10, bp_get_be16(other + 10));
    bp_put_be16(other + 10, kind);
    t_six_reseal(b, n);
    CHECK(spit(p, b, n));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_FAILS(bp_store_verify(s, &rep, NULL), BP_ECORRUPT, "000002.fidx");
    CHECK_EQ(rep.problems, 1);
    CHECK(strstr(rep.first_problem, "record 3 does not match") != NULL);
    CHECK_OK(bp_store_close(s));
    /* a damaged one (its CRC fails) is a cache miss, not a problem */
    b[x.off[BP_SIXB_RECS] + 5] ^= 0xff;
    CHECK(spit(p, b, n));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    rep = (bp_verify_report)BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    free(b);
    t_rmdir(g_dir);
}

/* A compaction's new segments get index files; the removed segments' go. */
static void test_compaction(void) {
    g_dir = t_dir("six-compact");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 3000, 0);
    uint32_t before = count_segments(1);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 5;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    fill(s, 200, 3000); /* and the store goes on */
    uint32_t first = 1;
    while (first < before && count_segments(first) == 0)
        first++;
    uint32_t n = count_segments(first);
    CHECK(first > 1 && n >= 2); /* keep_last 5 of 37 entities: most segments went */
    for (uint32_t k = 1; k < first; k++) {
        char p[600];
        seg_path(k, "fidx", p, sizeof p);
        CHECK(access(p, F_OK) != 0);
    }
    for (uint32_t k = first; k < first + n - 1; k++)
        check_against_store(s, k);
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* Every event appended by fill(n) is found by id (its seq matches). */
static void get_all(bp_store *s, const bp_id *ids, int n) {
    for (int i = 0; i < n; i++) {
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &ids[i]));
        CHECK(memcmp(ev->event_id.b, ids[i].b, 16) == 0);
        bp_event_free(ev);
    }
}

/* Fill a store of about 12 sealed segments, keeping every event's id. */
static bp_id *fill_ids(const char *dir, int n) {
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 64 << 10});
    if (!s) return NULL;
    fill(s, n, 0);
    bp_id *ids = calloc((size_t)n, sizeof *ids);
    bp_region q = BP_REGION_INIT;
    bp_iter *it = NULL;
    const bp_event *e;
    int k = 0;
    if (ids && bp_query(s, &it, &q, BP_READ_INDEX_ONLY) == BP_OK)
        while (k < n && bp_iter_next(it, &e) == BP_OK)
            ids[k++] = e->event_id;
    bp_iter_free(it);
    if (bp_store_close(s) != BP_OK || k != n) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* After an open, the sealed segments' ids are looked up in their index files, not in the
 * in-memory id table; every event is still found by id. */
static void test_ids_in_place(void) {
    g_dir = t_dir("six-ids");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    bp_store *s = t_open(g_dir, NULL);
    uint64_t in_six = 0;
    for (uint32_t i = 0; i < s->n_segs; i++) {
        CHECK_EQ(s->segs[i].ids_six, s->segs[i].sealed);
        if (s->segs[i].ids_six)
            in_six +=
                (i + 1 < s->n_segs ? s->segs[i + 1].first_slot : s->idx.n) - s->segs[i].first_slot;
    }
    CHECK(in_six > 2000);
    CHECK_EQ(s->idx.noids, in_six);
    uint64_t entries = 0, probes = 0;
    bp_index_idtab_stats(&s->idx, &entries, &probes);
    CHECK_EQ(entries, s->idx.n - s->idx.holes - in_six);
    get_all(s, ids, 3000);
    bp_id absent = ids[1500];
    absent.b[15] ^= 1; /* within a segment's id range, but no event's */
    bp_event *ev = NULL;
    CHECK_FAILS(bp_get(s, &ev, &absent), BP_ENOTFOUND, "not found");
    for (uint32_t i = 0; i < s->n_segs; i++)
        CHECK(!s->segs[i].six_bad); /* nothing damaged */
    CHECK_OK(bp_store_close(s));
    free(ids);
    t_rmdir(g_dir);
}

/* A damaged block is found when first used: reads stay right (the segment's records are
 * searched, then its ids placed in memory); a read-only handle leaves the file alone, a
 * writable one writes it again. */
static void test_damaged_ids_block(void) {
    g_dir = t_dir("six-damaged");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    char p[600];
    seg_path(2, "fidx", p, sizeof p);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b != NULL);
    bp_six x;
    CHECK_OK(bp_six_open(&x, b, n, p));
    b[x.off[BP_SIXB_IDS] + 40] ^= 0x01; /* an id of segment 2 */
    CHECK(spit(p, b, n));

    bp_store *s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK(s->segs[1].ids_six); /* the header is intact: found only when used */
    get_all(s, ids, 3000);
    CHECK(!s->segs[1].ids_six); /* its ids are in memory now */
    CHECK(s->segs[2].ids_six);  /* the others still answer in place */
    CHECK_OK(bp_store_close(s));
    size_t m = 0;
    uint8_t *same = t_slurp(p, &m);
    CHECK(same && m == n && !memcmp(same, b, n)); /* a reader never writes */
    free(same);

    s = t_open(g_dir, NULL);
    get_all(s, ids, 3000);
    CHECK(!s->segs[1].ids_six);
    CHECK(six_current(2, &x, NULL)); /* written again by the writer */
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, NULL); /* and used again by the next open */
    CHECK(s->segs[1].ids_six);
    get_all(s, ids, 3000);
    CHECK(s->segs[1].ids_six);
    CHECK_OK(bp_store_close(s));
    free(b);
    free(ids);
    t_rmdir(g_dir);
}

/* Damage is found by the page: a lookup that reads only intact pages of a block whose last
 * page is damaged is answered from the file; the first that reads the damaged page falls back
 * (the right event all the same), and the segment is then read from memory. */
static void test_damaged_page(void) {
    g_dir = t_dir("six-page");
    bp_id *ids = fill_ids(g_dir, 6000);
    CHECK(ids != NULL);
    bp_six x;
    uint8_t *b = NULL;
    CHECK(six_current(2, &x, &b));
    if (!b) return;
    /* (the search for the first id reads entries up to the middle: not the last page) */
    CHECK(x.len[BP_SIXB_IDS] / 2 + 16 < (x.len[BP_SIXB_IDS] - 1) / BP_SIX_PAGE * BP_SIX_PAGE);
    CHECK(x.flags & BP_SIX_IDS_IN_ORDER);
    bp_id first, last;
    memcpy(first.b, b + x.off[BP_SIXB_IDS], 16);
    memcpy(last.b, b + x.off[BP_SIXB_IDS] + x.len[BP_SIXB_IDS] - 16, 16);
    CHECK(damage(2, BP_SIXB_IDS, x.len[BP_SIXB_IDS] - 1, 0x01)); /* the last id's last byte */

    bp_store *s = t_open(g_dir, &(t_open_opts){.read_only = true});
    bp_event *ev = NULL;
    CHECK_OK(bp_get(s, &ev, &first)); /* the pages on its search path are intact */
    CHECK(memcmp(ev->event_id.b, first.b, 16) == 0);
    bp_event_free(ev);
    CHECK(s->segs[1].ids_six);
    CHECK(!s->segs[1].six_bad);
    CHECK_OK(bp_get(s, &ev, &last)); /* its page is damaged: the right event all the same */
    CHECK(memcmp(ev->event_id.b, last.b, 16) == 0);
    bp_event_free(ev);
    CHECK(s->segs[1].six_bad || !s->segs[1].ids_six);
    get_all(s, ids, 6000);
    CHECK(s->segs[2].ids_six && !s->segs[2].six_bad); /* the others still answer in place */
    CHECK_OK(bp_store_close(s));
    free(b);
    free(ids);
    t_rmdir(g_dir);
}

/* Append again under key-<i> (fill's key of event i): a replay of event i. */
static void replay(bp_store *s, int i, const bp_id *id) {
    char ent[32], key[32];
    snprintf(ent, sizeof ent, "acct:%d", i % 37);
    snprintf(key, sizeof key, "key-%d", i);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = key;
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, ent, "s0", BP_KIND(1, 0), "x", 1, &o));
    CHECK(r.replayed);
    CHECK(memcmp(r.event_id.b, id->b, 16) == 0);
    /* the same key for another entity is a conflict */
    CHECK_FAILS(bp_append_ex(s, &r, "other", "s0", BP_KIND(1, 0), "x", 1, &o), BP_ECONFLICT,
                "already used for entity");
}

/* Idempotency keys of sealed segments are looked up in their index files, not kept in
 * memory; a replay after a reopen finds them, also when the file's keys block is damaged. */
static void test_keys_in_place(void) {
    g_dir = t_dir("six-keys");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    bp_store *s = t_open(g_dir, NULL);
    /* only the active segment's keys are in memory */
    uint64_t active_first = s->segs[s->n_segs - 1].first_slot, keyed_active = 0;
    for (uint64_t q = active_first; q < 3000; q++)
        keyed_active += q % 10 == 0;
    CHECK_EQ(s->idx.idem_keys.n, keyed_active);
    for (int i = 0; i < 3000; i += 370)
        replay(s, i, &ids[i]);
    CHECK_EQ(bp_store_published(s), 3000); /* nothing appended */
    for (uint32_t i = 0; i < s->n_segs; i++)
        CHECK(!s->segs[i].six_bad);
    CHECK_OK(bp_store_close(s));

    /* segment 3's keys block damaged: found at the first keyed append that needs it */
    char p[600];
    seg_path(3, "fidx", p, sizeof p);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b != NULL);
    bp_six x;
    CHECK_OK(bp_six_open(&x, b, n, p));
    CHECK(x.n_idems > 0);
    b[x.off[BP_SIXB_IDEM] + 3] ^= 0x10;
    CHECK(spit(p, b, n));
    free(b);
    s = t_open(g_dir, NULL);
    /* a key of segment 3: the lookup passes over its file and reads the frames */
    uint64_t first3 = s->segs[2].first_slot;
    int i3 = (int)((first3 + 9) / 10 * 10);
    CHECK((uint64_t)i3 < s->segs[3].first_slot);
    replay(s, i3, &ids[i3]);
    CHECK(!s->segs[2].ids_six);      /* its ids and keys are in memory now */
    CHECK(six_current(3, &x, NULL)); /* and its file was written again */
    for (int i = 0; i < 3000; i += 370)
        replay(s, i, &ids[i]);
    /* a new key still appends */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "a-new-key";
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, "acct:1", "s0", BP_KIND(1, 0), "x", 1, &o));
    CHECK(!r.replayed);
    CHECK_EQ(r.global_seq, 3001);
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    free(ids);
    t_rmdir(g_dir);
}

/* The seqs a query returns, against fill()'s pattern: event i (seq i + 1) has scope s<i%3>,
 * kind (1, i%5), entity acct:<i%37>. from/to 0: unbounded; scope -1, kind -1: any. */
static void check_query(bp_store *s, int n, int scope, int kind, int kind2, uint64_t from,
                        uint64_t to, unsigned flags) {
    char sc[8];
    snprintf(sc, sizeof sc, "s%d", scope);
    uint16_t kinds[2] = {BP_KIND(1, kind), BP_KIND(1, kind2)};
    bp_region q = BP_REGION_INIT;
    q.scope = scope >= 0 ? sc : NULL;
    q.kinds = kind >= 0 ? kinds : NULL;
    q.n_kinds = kind < 0 ? 0 : kind2 < 0 ? 1 : 2;
    q.from_seq = from;
    q.to_seq = to;
    bp_iter *it = NULL;
    CHECK_OK(bp_query(s, &it, &q, flags));
    const bp_event *e;
    int i = 0;
    for (;;) {
        while (i < n && !((scope < 0 || i % 3 == scope) &&
                          (kind < 0 || i % 5 == kind || (kind2 >= 0 && i % 5 == kind2)) &&
                          (!from || (uint64_t)i + 1 >= from) && (!to || (uint64_t)i + 1 <= to)))
            i++;
        bp_status rc = bp_iter_next(it, &e);
        if (i == n) {
            CHECK_EQ(rc, BP_DONE);
            break;
        }
        CHECK_OK(rc);
        CHECK_EQ(e->global_seq, (uint64_t)i + 1);
        CHECK_EQ(e->kind, BP_KIND(1, i % 5));
        i++;
    }
    bp_iter_free(it);
}

static void check_queries(bp_store *s, int n) {
    for (int sc = -1; sc < 3; sc++)
        for (int k = -1; k < 5; k++) {
            check_query(s, n, sc, k, -1, 0, 0, BP_READ_FULL);
            check_query(s, n, sc, k, -1, 777, 2345, BP_READ_INDEX_ONLY);
        }
    check_query(s, n, -1, 2, 4, 0, 0, BP_READ_FULL); /* two kinds: no kind source */
    check_query(s, n, 1, 3, -1, 1501, 0, BP_READ_FULL);
}

/* Scope and kind queries over the sealed segments use their index files: the in-memory
 * lists hold only the slots past them. */
static void test_queries_in_place(void) {
    g_dir = t_dir("six-query");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    bp_store *s = t_open(g_dir, NULL);
    CHECK(s->n_six >= 5 && s->n_six == s->n_segs - 1);
    CHECK_EQ(s->idx.list_base, s->segs[s->n_six].first_slot);
    for (uint32_t k = 0; k < s->idx.scope_names.n; k++)
        CHECK(s->idx.scopes[k].n == 0 || s->idx.scopes[k].v[0] >= s->idx.list_base);
    check_queries(s, 3000);
    fill(s, 200, 3000); /* the lists go on past the tier */
    check_queries(s, 3200);
    CHECK_OK(bp_store_close(s));

    /* a damaged scopes block and a damaged records block: those segments are read by
     * their records in memory */
    CHECK(damage(2, BP_SIXB_SCOPES, 1, 0x40));
    CHECK(damage(4, BP_SIXB_RECS, 1, 0x40));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    check_queries(s, 3200);
    CHECK_OK(bp_store_close(s));
    free(ids);
    t_rmdir(g_dir);
}

/* Readers (get by id, scope queries) on several threads while a writer appends with keys,
 * over a store whose segment 2 has a damaged ids block and segment 3 a damaged keys block:
 * the repairs run while others read (TSan runs this test). */
typedef struct race {
    bp_store *s;
    const bp_id *ids;
    int n;
    int fails;
} race;

static void *race_reader(void *arg) {
    race *r = arg;
    for (int round = 0; round < 3; round++)
        for (int i = round; i < r->n; i += 7) {
            bp_event *ev = NULL;
            if (bp_get(r->s, &ev, &r->ids[i]) != BP_OK ||
                memcmp(ev->event_id.b, r->ids[i].b, 16) != 0)
                __atomic_fetch_add(&r->fails, 1, __ATOMIC_RELAXED);
            bp_event_free(ev);
        }
    bp_iter *it = NULL;
    const bp_event *e;
    uint64_t count = 0;
    if (bp_by_scope(r->s, &it, "s1", BP_READ_INDEX_ONLY) == BP_OK)
        while (bp_iter_next(it, &e) == BP_OK)
            count += e->global_seq <= (uint64_t)r->n;
    bp_iter_free(it);
    if (count != (uint64_t)r->n / 3) __atomic_fetch_add(&r->fails, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void *race_writer(void *arg) {
    race *r = arg;
    for (int i = 0; i < r->n; i += 50) {
        char ent[32], key[32];
        snprintf(ent, sizeof ent, "acct:%d", i % 37);
        snprintf(key, sizeof key, "key-%d", i - i % 10);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.idempotency_key = key;
        bp_receipt rc = BP_RECEIPT_INIT;
        if (bp_append_ex(r->s, &rc, ent, "s0", BP_KIND(1, 0), "x", 1, &o) != BP_OK || !rc.replayed)
            __atomic_fetch_add(&r->fails, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_repair_while_reading(void) {
    g_dir = t_dir("six-race");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    CHECK(damage(2, BP_SIXB_IDS, 2, 0x08));
    CHECK(damage(3, BP_SIXB_IDEM, 2, 0x08));
    bp_store *s = t_open(g_dir, NULL);
    race r = {s, ids, 3000, 0};
    pthread_t th[4];
    for (int k = 0; k < 3; k++)
        CHECK(pthread_create(&th[k], NULL, race_reader, &r) == 0);
    CHECK(pthread_create(&th[3], NULL, race_writer, &r) == 0);
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    CHECK_EQ(r.fails, 0);
    CHECK(!s->segs[1].ids_six && !s->segs[2].ids_six); /* both repaired */
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    CHECK(t_six_all_current(g_dir));
    free(ids);
    t_rmdir(g_dir);
}

/* Entity acct:<e> of fill(n): its events are those i with i % 37 == e, clocks from 1. The
 * stream (full and index-only, from a seq), its head, its chain. Returns its event count. */
static int check_entity(bp_store *s, int n, int e, uint64_t from) {
    char ent[32];
    snprintf(ent, sizeof ent, "acct:%d", e);
    int count = 0;
    for (int pass = 0; pass < 2; pass++) {
        bp_region q = BP_REGION_INIT;
        q.entity = ent;
        q.from_seq = from;
        bp_iter *it = NULL;
        if (bp_query(s, &it, &q, pass ? BP_READ_INDEX_ONLY : BP_READ_FULL)) return -1;
        const bp_event *ev;
        int i = e, clock = 1;
        while (i < n && from && (uint64_t)i + 1 < from) {
            i += 37;
            clock++;
        }
        bp_hash last;
        memset(&last, 0, sizeof last);
        while (bp_iter_next(it, &ev) == BP_OK) {
            if (i >= n || ev->global_seq != (uint64_t)i + 1 || ev->clock != (uint64_t)clock ||
                strcmp(ev->entity, ent) != 0) {
                fprintf(stderr, "%s: seq %llu clock %llu, expected seq %d clock %d\n", ent,
                        (unsigned long long)ev->global_seq, (unsigned long long)ev->clock, i + 1,
                        clock);
                bp_iter_free(it);
                return -1;
            }
            if (!pass) last = ev->event_hash;
            i += 37;
            clock++;
        }
        bp_iter_free(it);
        if (i < n) return -1; /* some missing */
        count = clock - 1;
        if (!pass && !from) {
            uint64_t hc = 0;
            bp_hash hh;
            if (bp_entity_head(s, &hc, &hh, ent) || hc != (uint64_t)count ||
                memcmp(hh.b, last.b, 32) != 0)
                return -1;
        }
    }
    return count;
}

static bp_status count_walk(void *ctx, const bp_event *ev, uint32_t depth) {
    (void)ev;
    (void)depth;
    ++*(int *)ctx;
    return BP_OK;
}

/* Entity streams, heads, chain walks and appends over the six tier: the entity lists hold
 * only the slots past it, each entity's tier counts the others. */
static void test_entities_in_place(void) {
    g_dir = t_dir("six-entities");
    bp_id *ids = fill_ids(g_dir, 3000);
    CHECK(ids != NULL);
    bp_store *s = t_open(g_dir, NULL);
    CHECK(s->n_six >= 5);
    uint64_t tier = 0;
    for (uint32_t k = 0; k < s->idx.entity_names.n; k++) {
        const bp_entity_state *es = &s->idx.entities[k];
        CHECK(es->slots.n == 0 || es->slots.v[0] >= s->idx.list_base);
        tier += es->tier;
    }
    CHECK_EQ(tier, s->idx.list_base); /* (no holes: every tier slot is an event) */
    for (int e = 0; e < 37; e++) {
        CHECK(check_entity(s, 3000, e, 0) > 0);
        CHECK(check_entity(s, 3000, e, 1501) >= 0);
    }
    /* a chain walk from acct:5's newest event goes back through the tier */
    int depth = 0;
    CHECK_OK(bp_walk_ancestors(
        s, &ids[2997 - 2997 % 37 + 5 >= 3000 ? 2997 - 2997 % 37 + 5 - 37 : 2997 - 2997 % 37 + 5],
        BP_WALK_CHAIN, 0, count_walk, &depth));
    CHECK_EQ(depth, check_entity(s, 3000, 5, 0) - 1);
    /* appends continue every chain, past the tier */
    fill(s, 370, 3000);
    for (int e = 0; e < 37; e++)
        CHECK(check_entity(s, 3370, e, 0) > 0);
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));

    /* a damaged entities block: the tier goes back in memory at the first entity read */
    CHECK(damage(2, BP_SIXB_ENTS, 9, 0x01));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK(s->n_six >= 5);
    for (int e = 0; e < 37; e++)
        CHECK(check_entity(s, 3370, e, 0) > 0);
    CHECK_EQ(s->n_six, 0);
    CHECK_EQ(s->idx.list_base, 0);
    CHECK_OK(bp_store_close(s));

    /* a compaction of a store opened with its tier */
    s = t_open(g_dir, NULL);
    CHECK(s->n_six >= 5);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 40;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK_EQ(s->n_six, 0);
    rep = (bp_verify_report)BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    fill(s, 37, 3370);
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, NULL); /* the compacted store's tier */
    uint64_t clock = 0;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:3"));
    CHECK_EQ(clock, 3407 / 37 + (3407 % 37 > 3));
    rep = (bp_verify_report)BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_store_close(s));
    free(ids);
    t_rmdir(g_dir);
}

/* The header says when some payload of the segment is sealed (crypto-shredding). */
static void test_sealed_flag(void) {
    g_dir = t_dir("six-sealed");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10, .seal_payloads = true});
    fill(s, 600, 0);
    CHECK_OK(bp_store_close(s));
    bp_six x;
    CHECK(six_current(1, &x, NULL));
    CHECK(x.flags & BP_SIX_SEALED);
    t_rmdir(g_dir);
    g_dir = t_dir("six-plain");
    s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 600, 0);
    CHECK_OK(bp_store_close(s));
    CHECK(six_current(1, &x, NULL));
    CHECK(!(x.flags & BP_SIX_SEALED));
    t_rmdir(g_dir);
}

int main(void) {
    test_written_at_seal();
    test_rebuilt_at_open();
    test_verify_catches_a_wrong_index();
    test_compaction();
    test_ids_in_place();
    test_damaged_ids_block();
    test_damaged_page();
    test_keys_in_place();
    test_queries_in_place();
    test_repair_while_reading();
    test_entities_in_place();
    test_sealed_flag();
    printf("%d checks, %d failures\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
