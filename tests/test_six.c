/* Segment index files (src/format/six.h, doc/FORMAT.md "Segment index files"): index blocks
 * built by hand are encoded, and every record, id, seq, entity and its postings, scope, kind
 * and idempotency key is read back and compared with what the block says, computed here
 * the slow way; blocks the format cannot index are refused; every damaged byte and every
 * truncation is caught, and so is a broken bound behind valid CRCs. */
#include "t.h"
#include "format/six.h"

#define MAXR 16

/* A block under construction: the bp_iblock and the arrays it points into. */
typedef struct tb {
    bp_iblock b;
    bp_irec recs[MAXR];
    bp_iname ents[8], scopes[4];
    bp_iidem idems[8];
    uint64_t seqs[MAXR];
    uint64_t clocks[8];
    bp_six_pair pair;
} tb;

/* One record: its entity and scope by name, kind, the last byte of its id, body length. */
typedef struct spec {
    const char *ent, *scope;
    uint16_t kind;
    uint8_t id;
    uint32_t body;
} spec;

static bp_id mkid(uint8_t lo) {
    bp_id id;
    memset(id.b, 0, 16);
    id.b[0] = 0x01;
    id.b[6] = 0x70;
    id.b[15] = lo;
    return id;
}

static uint32_t name_ix(const bp_iname *v, uint32_t n, const char *s) {
    for (uint32_t i = 0; i < n; i++)
        if (v[i].len == strlen(s) && memcmp(v[i].name, s, v[i].len) == 0) return i;
    return UINT32_MAX;
}

static bool same_name(const char *a, size_t an, const char *b) {
    return an == strlen(b) && memcmp(a, b, an) == 0;
}

/* A dense block of n records (seqs from 100), with the entities and scopes named in the order
 * given (the block's numbering), frames from offset 48 on, contiguous. */
static void build(tb *t, const spec *s, uint32_t n, const char *const *ents, uint32_t ne,
                  const char *const *scopes, uint32_t ns) {
    memset(t, 0, sizeof *t);
    for (uint32_t e = 0; e < ne; e++) {
        t->ents[e] = (bp_iname){ents[e], (uint16_t)strlen(ents[e])};
        t->clocks[e] = 1 + 10 * e;
    }
    for (uint32_t k = 0; k < ns; k++)
        t->scopes[k] = (bp_iname){scopes[k], (uint16_t)strlen(scopes[k])};
    uint32_t at = BP_SEG_HEADER_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        bp_irec *r = &t->recs[i];
        r->id = mkid(s[i].id);
        r->hlc = 5000 + 7 * i - (i % 3 == 1 ? 20 : 0); /* not monotonic */
        r->segno = 7;
        r->offset = at;
        r->frame_len = BP_FRAME_PREFIX + s[i].body;
        r->entity = name_ix(t->ents, ne, s[i].ent);
        r->scope = name_ix(t->scopes, ns, s[i].scope);
        r->kind = s[i].kind;
        at += r->frame_len;
    }
    t->b.first_seq = 100;
    t->b.recs = t->recs;
    t->b.n_recs = n;
    t->b.entities = t->ents;
    t->b.n_entities = ne;
    t->b.scopes = t->scopes;
    t->b.n_scopes = ns;
    t->b.idems = t->idems;
    t->pair.segno = 7;
    for (int i = 0; i < 16; i++)
        t->pair.uuid[i] = (uint8_t)(0xA0 + i);
    t->pair.frames_end = at;
    t->pair.seg_size = at + 64; /* the footer and trailer */
    t->pair.footer_crc = 0xDEADBEEF;
}

static void add_idem(tb *t, uint32_t rec, const char *key) {
    t->idems[t->b.n_idems++] = (bp_iidem){rec, key, (uint16_t)strlen(key)};
}

static void set_seqs(tb *t, const uint64_t *seqs) {
    memcpy(t->seqs, seqs, sizeof(uint64_t) * t->b.n_recs);
    t->b.seqs = t->seqs;
    t->b.first_seq = seqs[0];
}

static uint64_t seq_of(const tb *t, uint32_t i) {
    return t->b.seqs ? t->b.seqs[i] : t->b.first_seq + i;
}

static int encode(const tb *t, bp_buf *out) {
    return bp_six_encode(out, &t->b, t->clocks, &t->pair);
}

/* The header fields, from the bytes and from bp_six_open, against the block. */
static void check_header(const tb *t, const uint8_t *p, size_t n, const bp_six *x) {
    const bp_iblock *b = &t->b;
    CHECK(memcmp(p, "BPIX", 4) == 0);
    CHECK_EQ(bp_get_be16(p + 4), BP_SIX_VERSION);
    CHECK_EQ(bp_get_be16(p + 6), BP_SIX_HEADER);
    CHECK_EQ(bp_get_be32(p + BP_SIX_HEADER - 4), bp_crc32(p, BP_SIX_HEADER - 4));
    CHECK_EQ(x->pair.segno, t->pair.segno);
    CHECK(memcmp(x->pair.uuid, t->pair.uuid, 16) == 0);
    CHECK_EQ(x->pair.seg_size, t->pair.seg_size);
    CHECK_EQ(x->pair.frames_end, t->pair.frames_end);
    CHECK_EQ(x->pair.footer_crc, t->pair.footer_crc);
    CHECK_EQ(x->first_seq, seq_of(t, 0));
    CHECK_EQ(x->last_seq, seq_of(t, b->n_recs - 1));
    CHECK_EQ(x->n_recs, b->n_recs);
    CHECK_EQ(x->n_ents, b->n_entities);
    CHECK_EQ(x->n_scopes, b->n_scopes);
    CHECK_EQ(x->n_idems, b->n_idems);
    uint64_t lo = UINT64_MAX, hi = 0;
    bp_id mn = b->recs[0].id, mx = b->recs[0].id;
    for (uint32_t i = 0; i < b->n_recs; i++) {
        lo = b->recs[i].hlc < lo ? b->recs[i].hlc : lo;
        hi = b->recs[i].hlc > hi ? b->recs[i].hlc : hi;
        if (memcmp(b->recs[i].id.b, mn.b, 16) < 0) mn = b->recs[i].id;
        if (memcmp(b->recs[i].id.b, mx.b, 16) > 0) mx = b->recs[i].id;
    }
    CHECK_EQ(x->min_hlc, lo);
    CHECK_EQ(x->max_hlc, hi);
    CHECK(memcmp(x->min_id.b, mn.b, 16) == 0);
    CHECK(memcmp(x->max_id.b, mx.b, 16) == 0);
    /* the blocks follow the header in order, back to back, and fill the file */
    uint32_t at = BP_SIX_HEADER;
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        CHECK_EQ(x->off[k], at);
        CHECK_EQ(x->crc[k], bp_crc32(p + at, x->len[k]));
        at += x->len[k];
    }
    CHECK_EQ(at, n);
    CHECK_EQ(x->len[BP_SIXB_RECS], 12 * b->n_recs);
    CHECK_EQ(x->len[BP_SIXB_SEQS], b->seqs ? 4 * b->n_recs : 0);
    CHECK_EQ(x->len[BP_SIXB_ENTS], 24 * b->n_entities);
    CHECK_EQ(x->len[BP_SIXB_POST], 4 * b->n_recs);
    CHECK_EQ(x->len[BP_SIXB_SCOPES], 12 * b->n_scopes);
    CHECK_EQ(x->len[BP_SIXB_KINDS], 8 * x->n_kinds);
    CHECK_EQ(x->len[BP_SIXB_IDEM], 12 * b->n_idems);
    CHECK_EQ((x->flags & BP_SIX_HOLES) != 0, b->seqs != NULL);
}

/* Every record by index, seq and id. */
static void check_records(const tb *t, bp_six *x) {
    const bp_iblock *b = &t->b;
    for (uint32_t i = 0; i < b->n_recs; i++) {
        const bp_irec *r = &b->recs[i];
        bp_six_rec got;
        bp_six_rec_get(x, i, &got);
        CHECK_EQ(got.seq, seq_of(t, i));
        CHECK_EQ(got.offset, r->offset);
        CHECK_EQ(got.frame_len, r->frame_len);
        CHECK_EQ(got.kind, r->kind);
        CHECK(got.entity < x->n_ents && got.scope < x->n_scopes);
        bp_six_ent e;
        bp_six_ent_get(x, got.entity, &e);
        uint32_t be = b->emap ? b->emap[r->entity] : r->entity;
        uint32_t bs = b->smap ? b->smap[r->scope] : r->scope;
        CHECK(same_name(e.name, e.len, b->entities[be].name));
        const char *sn;
        uint16_t sl;
        uint32_t sc;
        bp_six_scope_get(x, got.scope, &sn, &sl, &sc);
        CHECK(same_name(sn, sl, b->scopes[bs].name));
        CHECK_EQ(bp_six_find_seq(x, seq_of(t, i)), i);
        CHECK_EQ(bp_six_find_id(x, &r->id), i);
        bp_id id;
        bp_six_id(x, i, &id);
        CHECK(memcmp(id.b, r->id.b, 16) == 0);
    }
    /* seqs that are not there: around the range, and every hole */
    CHECK_EQ(bp_six_find_seq(x, 0), -1);
    CHECK_EQ(bp_six_find_seq(x, seq_of(t, 0) - 1), -1);
    CHECK_EQ(bp_six_find_seq(x, seq_of(t, b->n_recs - 1) + 1), -1);
    CHECK_EQ(bp_six_find_seq(x, UINT64_MAX), -1);
    for (uint32_t i = 0; i + 1 < b->n_recs; i++) /* (the first and last 100 of a wide one) */
        for (uint64_t s = seq_of(t, i) + 1; s < seq_of(t, i + 1); s++) {
            if (s == seq_of(t, i) + 100 && seq_of(t, i + 1) - s > 100) s = seq_of(t, i + 1) - 100;
            CHECK_EQ(bp_six_find_seq(x, s), -1);
        }
    /* ids that are not there: below the least, above the greatest, between two */
    for (unsigned lo = 0; lo < 256; lo++) {
        bp_id id = mkid((uint8_t)lo);
        int64_t want = -1;
        for (uint32_t i = 0; i < b->n_recs && want < 0; i++)
            if (memcmp(b->recs[i].id.b, id.b, 16) == 0) want = i;
        CHECK_EQ(bp_six_find_id(x, &id), want);
    }
    bp_id zero = {{0}}, ones;
    memset(ones.b, 0xFF, 16);
    CHECK_EQ(bp_six_find_id(x, &zero), -1);
    CHECK_EQ(bp_six_find_id(x, &ones), -1);
}

static int cmp_name(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Entities: sorted, each with its first clock, count and postings (its records ascending);
 * each found by name. */
static void check_entities(const tb *t, bp_six *x) {
    const bp_iblock *b = &t->b;
    uint32_t covered = 0;
    for (uint32_t e = 0; e < x->n_ents; e++) {
        bp_six_ent en;
        bp_six_ent_get(x, e, &en);
        if (e) {
            bp_six_ent prev;
            bp_six_ent_get(x, e - 1, &prev);
            CHECK(cmp_name(prev.name, prev.len, en.name, en.len) < 0);
        }
        uint32_t be = UINT32_MAX;
        for (uint32_t k = 0; k < b->n_entities; k++)
            if (same_name(en.name, en.len, b->entities[k].name)) be = k;
        CHECK(be != UINT32_MAX);
        CHECK_EQ(en.first_clock, t->clocks[be]);
        uint32_t k = 0;
        for (uint32_t i = 0; i < b->n_recs; i++) {
            uint32_t re = b->emap ? b->emap[b->recs[i].entity] : b->recs[i].entity;
            if (re != be) continue;
            CHECK(k < en.count);
            CHECK_EQ(bp_six_post(x, en.post + k), i);
            k++;
        }
        CHECK_EQ(k, en.count);
        covered += en.count;
        uint32_t at = 12345;
        CHECK_EQ(bp_six_find_ent(x, en.name, en.len, &at), e);
        CHECK_EQ(at, e);
        CHECK_EQ(bp_six_find_ent(x, en.name, en.len, NULL), e);
    }
    CHECK_EQ(covered, b->n_recs);
}

static void check_scopes_kinds_keys(const tb *t, bp_six *x) {
    const bp_iblock *b = &t->b;
    for (uint32_t s = 0; s < x->n_scopes; s++) {
        const char *sn;
        uint16_t sl;
        uint32_t count, want = 0;
        bp_six_scope_get(x, s, &sn, &sl, &count);
        for (uint32_t i = 0; i < b->n_recs; i++) {
            uint32_t rs = b->smap ? b->smap[b->recs[i].scope] : b->recs[i].scope;
            want += same_name(sn, sl, b->scopes[rs].name);
        }
        CHECK_EQ(count, want);
        CHECK_EQ(bp_six_find_scope(x, sn, sl), s);
        if (s) {
            const char *pn;
            uint16_t pl;
            uint32_t pc;
            bp_six_scope_get(x, s - 1, &pn, &pl, &pc);
            CHECK(cmp_name(pn, pl, sn, sl) < 0);
        }
    }
    /* every kind, present or not */
    uint32_t kinds = 0;
    for (uint32_t k = 0; k <= 0xFFFF; k++) {
        uint32_t want = 0;
        for (uint32_t i = 0; i < b->n_recs; i++)
            want += b->recs[i].kind == k;
        kinds += want > 0;
        CHECK_EQ(bp_six_kind_count(x, (uint16_t)k), want);
    }
    CHECK_EQ(x->n_kinds, kinds);
    /* each key's hash leads to exactly the records filed under it, ascending */
    for (uint32_t k = 0; k < b->n_idems; k++) {
        uint64_t h = bp_six_key_hash(b->idems[k].key, b->idems[k].len);
        uint32_t lo, hi, n = 0;
        bp_six_idem_range(x, h, &lo, &hi);
        for (uint32_t j = 0; j < b->n_idems; j++)
            if (bp_six_key_hash(b->idems[j].key, b->idems[j].len) == h) n++;
        CHECK_EQ(hi - lo, n);
        bool found = false;
        for (uint32_t j = lo; j < hi; j++) {
            found |= bp_six_idem_rec(x, j) == b->idems[k].rec;
            if (j > lo) CHECK(bp_six_idem_rec(x, j - 1) < bp_six_idem_rec(x, j));
        }
        CHECK(found);
    }
    uint32_t lo = 99, hi = 99;
    bp_six_idem_range(x, bp_six_key_hash("no such key", 11), &lo, &hi);
    CHECK_EQ(lo, hi);
}

/* Encode t, open it, check every block and compare everything with the block. out keeps
 * the bytes; x points into them. ROUNDTRIP leaves the test when that fails. */
static void roundtrip(const tb *t, bp_buf *out, bp_six *x) {
    out->len = 0;
    CHECK_EQ(encode(t, out), 0);
    CHECK_OK(bp_six_open(x, out->data, out->len, "t.fidx"));
    CHECK_OK(bp_six_check_all(x, "t.fidx"));
    int before = t_failures;
    check_header(t, out->data, out->len, x);
    if (t_failures == before) check_records(t, x);
    if (t_failures == before) check_entities(t, x);
    if (t_failures == before) check_scopes_kinds_keys(t, x);
}
#define ROUNDTRIP(t, out, x)                                                                       \
    do {                                                                                           \
        int _f = t_failures;                                                                       \
        roundtrip(t, out, x);                                                                      \
        if (t_failures != _f) return;                                                              \
    } while (0)

static const char *const ENTS7[] = {"acct:2", "acct:10", "b", "acct:1"};
static const char *const SCOPES2[] = {"misc", "bank"};
static const spec DENSE7[] = {
    {"acct:1", "bank", 0x1001, 10, 20},  {"acct:2", "bank", 0x1001, 20, 31},
    {"b", "misc", 0x0002, 30, 9},        {"acct:1", "bank", 0xFFFF, 40, 100},
    {"acct:10", "bank", 0x1002, 50, 1},  {"acct:1", "misc", 0x0002, 60, 44},
    {"acct:2", "bank", 0x1001, 70, 250},
};

static void dense7(tb *t) {
    build(t, DENSE7, 7, ENTS7, 4, SCOPES2, 2);
    add_idem(t, 6, "order-77");
    add_idem(t, 0, "k-a");
    add_idem(t, 3, "k-b");
    add_idem(t, 4, "k-b"); /* one key on two records: both are filed under its hash */
}

static void test_dense_in_order(void) {
    tb t;
    dense7(&t);
    bp_buf b = {0};
    bp_six x;
    CHECK(bp_buf_append(&b, "xyz", 3) == 0); /* the encoder appends */
    CHECK_EQ(encode(&t, &b), 0);
    CHECK(memcmp(b.data, "xyz", 3) == 0);
    CHECK_OK(bp_six_open(&x, b.data + 3, b.len - 3, "t.fidx"));
    CHECK_OK(bp_six_check_all(&x, "t.fidx"));
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags, BP_SIX_IDS_IN_ORDER);
    CHECK_EQ(x.len[BP_SIXB_IDS], 16 * 7);
    CHECK_EQ(x.first_seq, 100);
    CHECK_EQ(x.last_seq, 106);
    CHECK_EQ(x.n_kinds, 4);
    /* the order of the names, and what each entity holds, written out */
    static const char *const sorted[] = {"acct:1", "acct:10", "acct:2", "b"};
    static const uint64_t clock[] = {31, 11, 1, 21};
    static const uint32_t count[] = {3, 1, 2, 1}, post[] = {0, 3, 4, 6};
    static const uint32_t postings[] = {0, 3, 5, 4, 1, 6, 2};
    for (uint32_t e = 0; e < 4; e++) {
        bp_six_ent en;
        bp_six_ent_get(&x, e, &en);
        CHECK(same_name(en.name, en.len, sorted[e]));
        CHECK_EQ(en.first_clock, clock[e]);
        CHECK_EQ(en.count, count[e]);
        CHECK_EQ(en.post, post[e]);
    }
    for (uint32_t k = 0; k < 7; k++)
        CHECK_EQ(bp_six_post(&x, k), postings[k]);
    bp_six_rec r;
    bp_six_rec_get(&x, 3, &r);
    CHECK_EQ(r.seq, 103);
    CHECK_EQ(r.offset, 48 + 28 + 39 + 17);
    CHECK_EQ(r.frame_len, 108);
    CHECK_EQ(r.entity, 0);
    CHECK_EQ(r.scope, 0); /* "bank" sorts first */
    CHECK_EQ(r.kind, 0xFFFF);
    /* prefix lookups: *at is where a listing of names from there on starts */
    uint32_t at = 99;
    CHECK_EQ(bp_six_find_ent(&x, "acct:", 5, &at), -1);
    CHECK_EQ(at, 0);
    CHECK_EQ(bp_six_find_ent(&x, "acct:1", 6, &at), 0);
    CHECK_EQ(at, 0);
    CHECK_EQ(bp_six_find_ent(&x, "acct:100", 8, &at), -1);
    CHECK_EQ(at, 2);
    CHECK_EQ(bp_six_find_ent(&x, "acct:3", 6, &at), -1);
    CHECK_EQ(at, 3);
    CHECK_EQ(bp_six_find_ent(&x, "a", 1, &at), -1);
    CHECK_EQ(at, 0);
    CHECK_EQ(bp_six_find_ent(&x, "c", 1, &at), -1);
    CHECK_EQ(at, 4);
    CHECK_EQ(bp_six_find_ent(&x, "b\0", 2, &at), -1);
    CHECK_EQ(at, 4);
    CHECK_EQ(bp_six_find_scope(&x, "bank", 4), 0);
    CHECK_EQ(bp_six_find_scope(&x, "misc", 4), 1);
    CHECK_EQ(bp_six_find_scope(&x, "ban", 3), -1);
    CHECK_EQ(bp_six_find_scope(&x, "zz", 2), -1);
    CHECK_EQ(bp_six_kind_count(&x, 0x1001), 3);
    CHECK_EQ(bp_six_kind_count(&x, 0x0002), 2);
    CHECK_EQ(bp_six_kind_count(&x, 0), 0);
    CHECK_EQ(bp_six_kind_count(&x, 0x1003), 0);
    /* ids: absent below the least, above the greatest, in between */
    bp_id id = mkid(5);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(71);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(35);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(50);
    CHECK_EQ(bp_six_find_id(&x, &id), 4);
    uint32_t lo, hi;
    bp_six_idem_range(&x, bp_six_key_hash("k-b", 3), &lo, &hi);
    CHECK_EQ(hi - lo, 2);
    CHECK_EQ(bp_six_idem_rec(&x, lo), 3);
    CHECK_EQ(bp_six_idem_rec(&x, lo + 1), 4);
    bp_buf_free(&b);
}

/* FNV-1a 64, against the published values. */
static void test_key_hash(void) {
    CHECK(bp_six_key_hash("", 0) == 0xcbf29ce484222325ull);
    CHECK(bp_six_key_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(bp_six_key_hash("foobar", 6) == 0x85944171f73967e8ull);
    CHECK(bp_six_key_hash("\xff", 1) != bp_six_key_hash("\x7f", 1));
}

static void test_ids_out_of_order(void) {
    static const spec s[] = {
        {"e", "s", 1, 90, 10}, {"e", "s", 1, 20, 10}, {"f", "s", 2, 60, 10},
        {"e", "s", 1, 21, 10}, {"f", "s", 1, 5, 10},  {"e", "s", 3, 200, 10},
    };
    static const char *const ents[] = {"f", "e"}, *const scopes[] = {"s"};
    tb t;
    build(&t, s, 6, ents, 2, scopes, 1);
    bp_buf b = {0};
    bp_six x;
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags & BP_SIX_IDS_IN_ORDER, 0);
    CHECK_EQ(x.len[BP_SIXB_IDS], 20 * 6);
    CHECK(memcmp(x.min_id.b, mkid(5).b, 16) == 0);
    CHECK(memcmp(x.max_id.b, mkid(200).b, 16) == 0);
    /* the pairs are sorted by id: record 4, 1, 3, 2, 0, 5 */
    static const uint32_t order[] = {4, 1, 3, 2, 0, 5};
    for (uint32_t k = 0; k < 6; k++)
        CHECK_EQ(bp_get_be32(b.data + x.off[BP_SIXB_IDS] + 20 * k + 16), order[k]);
    bp_id id = mkid(4);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(201);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(22);
    CHECK_EQ(bp_six_find_id(&x, &id), -1);
    id = mkid(60);
    CHECK_EQ(bp_six_find_id(&x, &id), 2);
    /* one record alone is in order */
    build(&t, s, 1, ents + 1, 1, scopes, 1);
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags, BP_SIX_IDS_IN_ORDER);
    /* ids ascending but two equal: not in order (IDS in order is strictly ascending); the
     * id finds the first of its records */
    build(&t, s, 3, ents, 2, scopes, 1);
    t.recs[0].id = t.recs[1].id = mkid(20);
    t.recs[2].id = mkid(60);
    b.len = 0;
    CHECK_EQ(encode(&t, &b), 0);
    CHECK_OK(bp_six_open(&x, b.data, b.len, "t.fidx"));
    CHECK_OK(bp_six_check_all(&x, "t.fidx"));
    CHECK_EQ(x.flags, 0);
    CHECK_EQ(bp_six_find_id(&x, &t.recs[1].id), 0);
    bp_id got;
    bp_six_id(&x, 1, &got);
    CHECK(memcmp(got.b, mkid(20).b, 16) == 0);
    bp_six_id(&x, 2, &got);
    CHECK(memcmp(got.b, mkid(60).b, 16) == 0);
    bp_buf_free(&b);
}

static void test_holes(void) {
    static const spec s[] = {
        {"e", "s", 1, 1, 10}, {"e", "s", 1, 2, 11}, {"f", "t", 2, 3, 12},
        {"e", "s", 1, 4, 13}, {"f", "s", 1, 5, 14}, {"e", "t", 3, 6, 15},
    };
    static const char *const ents[] = {"e", "f"}, *const scopes[] = {"s", "t"};
    static const uint64_t seqs[] = {10, 11, 14, 20, 21, 40};
    tb t;
    build(&t, s, 6, ents, 2, scopes, 2);
    set_seqs(&t, seqs);
    add_idem(&t, 5, "last");
    bp_buf b = {0};
    bp_six x;
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags, BP_SIX_IDS_IN_ORDER | BP_SIX_HOLES);
    CHECK_EQ(x.first_seq, 10);
    CHECK_EQ(x.last_seq, 40);
    for (uint32_t i = 0; i < 6; i++)
        CHECK_EQ(bp_get_be32(b.data + x.off[BP_SIXB_SEQS] + 4 * i), seqs[i] - 10);
    CHECK_EQ(bp_six_find_seq(&x, 14), 2);
    CHECK_EQ(bp_six_find_seq(&x, 40), 5);
    CHECK_EQ(bp_six_find_seq(&x, 12), -1);
    CHECK_EQ(bp_six_find_seq(&x, 39), -1);
    CHECK_EQ(bp_six_find_seq(&x, 9), -1);
    CHECK_EQ(bp_six_find_seq(&x, 41), -1);
    /* seqs that happen to be dense, given as seqs, still say so */
    static const uint64_t dense[] = {7, 8, 9, 10, 11, 12};
    set_seqs(&t, dense);
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags, BP_SIX_IDS_IN_ORDER | BP_SIX_HOLES);
    CHECK_EQ(bp_six_find_seq(&x, 12), 5);
    /* and holes with ids out of order */
    t.recs[0].id = mkid(99);
    set_seqs(&t, seqs);
    ROUNDTRIP(&t, &b, &x);
    CHECK_EQ(x.flags, BP_SIX_HOLES);
    bp_buf_free(&b);
}

/* A block an index lends (bp_index_export_view): records number entities and scopes the
 * index's way, emap and smap give the block's numbers. The same bytes as the plain block. */
static void test_emap_view(void) {
    tb t, v;
    dense7(&t);
    v = t;
    v.b.recs = v.recs;
    v.b.entities = v.ents;
    v.b.scopes = v.scopes;
    v.b.idems = v.idems;
    /* index entities 0..5, of which 5, 1, 3, 0 are the block's 0..3; scopes 0..2, of which
     * 2, 0 are the block's 0, 1 */
    static const uint32_t idx_of_ent[] = {5, 1, 3, 0}, idx_of_scope[] = {2, 0};
    uint32_t emap[6], smap[3];
    memset(emap, 0xFF, sizeof emap);
    memset(smap, 0xFF, sizeof smap);
    for (uint32_t e = 0; e < 4; e++)
        emap[idx_of_ent[e]] = e;
    for (uint32_t s = 0; s < 2; s++)
        smap[idx_of_scope[s]] = s;
    for (uint32_t i = 0; i < 7; i++) {
        v.recs[i].entity = idx_of_ent[t.recs[i].entity];
        v.recs[i].scope = idx_of_scope[t.recs[i].scope];
    }
    v.b.emap = emap;
    v.b.smap = smap;
    bp_buf a = {0}, b = {0};
    bp_six x;
    CHECK_EQ(encode(&t, &a), 0);
    ROUNDTRIP(&v, &b, &x);
    CHECK_EQ(a.len, b.len);
    CHECK(memcmp(a.data, b.data, a.len) == 0);
    bp_buf_free(&a);
    bp_buf_free(&b);
}

/* One refusal: -EINVAL and nothing appended. */
static void refused(const tb *t, const char *what) {
    bp_buf b = {0};
    CHECK(bp_buf_append(&b, "pre", 3) == 0);
    int rc = encode(t, &b);
    if (rc != -EINVAL) fprintf(stderr, "refusal '%s': got %d\n", what, rc);
    CHECK_EQ(rc, -EINVAL);
    CHECK_EQ(b.len, 3);
    bp_buf_free(&b);
}

static void test_refusals(void) {
    static const spec s[] = {{"e", "s", 1, 1, 10}, {"f", "s", 1, 2, 11}, {"e", "s", 1, 3, 12}};
    static const char *const ents[] = {"e", "f"}, *const scopes[] = {"s"};
    tb t;
    int before = t_failures;
#define CASE(what, edit)                                                                           \
    do {                                                                                           \
        build(&t, s, 3, ents, 2, scopes, 1);                                                       \
        edit;                                                                                      \
        refused(&t, what);                                                                         \
        if (t_failures != before) return;                                                          \
    } while (0)
    CASE("empty block", t.b.n_recs = 0);
    CASE("a gap between frames", t.recs[1].offset++);
    CASE("frames overlap", (t.recs[1].offset--, t.recs[1].frame_len++));
    CASE("a frame of just a prefix",
         (t.recs[1].frame_len = 8, t.recs[2].offset = t.recs[1].offset + 8,
          t.recs[2].frame_len += 31));
    CASE("first frame inside the segment header",
         (t.recs[0].offset = 40, t.recs[0].frame_len += 8));
    CASE("last frame ends before frames_end", t.pair.frames_end++);
    CASE("last frame ends after frames_end", t.pair.frames_end--);
    CASE("frames_end past the segment's size", t.pair.seg_size = t.pair.frames_end - 1);
    CASE("duplicate entity name", t.ents[1] = t.ents[0]);
    CASE("empty entity name", t.ents[1].len = 0);
    CASE("an entity with no record", t.recs[1].entity = 0);
    CASE("no entities", t.b.n_entities = 0);
    CASE("a record's entity out of range", t.recs[2].entity = 2);
    CASE("a record's scope out of range", t.recs[2].scope = 1);
    CASE("duplicate scope name",
         (t.scopes[1] = t.scopes[0], t.b.n_scopes = 2, t.recs[0].scope = 1));
    CASE("an idempotency key of no record", add_idem(&t, 3, "k"));
    static const uint64_t wide[] = {1, 2, 2 + (uint64_t)UINT32_MAX};
    CASE("seqs wider than 32 bits", set_seqs(&t, wide));
    /* blocks that would encode to a file its reader refuses */
    static const uint64_t down[] = {5, 9, 7}, up[] = {5, 7, 8};
    CASE("a scope no record names", (t.scopes[1] = (bp_iname){"t", 1}, t.b.n_scopes = 2));
    CASE("first_seq 0", t.b.first_seq = 0);
    CASE("seqs past 2^64", t.b.first_seq = UINT64_MAX - 1);
    CASE("seqs not ascending", set_seqs(&t, down));
    CASE("seqs not from first_seq", (set_seqs(&t, up), t.b.first_seq = 4));
    CASE("a first clock of 0", t.clocks[1] = 0);
    CASE("clocks past 2^64", t.clocks[0] = UINT64_MAX - 1);
    CASE("a frame longer than a frame can be",
         (t.recs[2].frame_len = BP_FRAME_PREFIX + BP_FRAME_MAX_BODY + 1,
          t.pair.seg_size = t.pair.frames_end = t.recs[2].offset + t.recs[2].frame_len));
    CASE("one key twice on a record", (add_idem(&t, 1, "k"), add_idem(&t, 1, "k")));
#undef CASE
    /* and the unchanged block encodes, as do the edges of what is refused above: the largest
     * clock and frame, seqs 2^32 - 1 apart, a key on two records, two keys on one */
    build(&t, s, 3, ents, 2, scopes, 1);
    bp_buf b = {0};
    bp_six x;
    ROUNDTRIP(&t, &b, &x);
    static const uint64_t widest[] = {1, 2, 1 + (uint64_t)UINT32_MAX};
    t.clocks[0] = UINT64_MAX - 2;
    t.recs[2].frame_len = BP_FRAME_PREFIX + BP_FRAME_MAX_BODY;
    t.pair.seg_size = t.pair.frames_end = t.recs[2].offset + t.recs[2].frame_len;
    set_seqs(&t, widest);
    add_idem(&t, 1, "k");
    add_idem(&t, 2, "k");
    add_idem(&t, 2, "j");
    ROUNDTRIP(&t, &b, &x);
    bp_six_rec r;
    bp_six_rec_get(&x, 2, &r);
    CHECK_EQ(r.frame_len, BP_FRAME_PREFIX + BP_FRAME_MAX_BODY);
    CHECK_EQ(r.seq, 1 + (uint64_t)UINT32_MAX);
    bp_buf_free(&b);
}

/* Read everything the way a reader would, from a file that passed every check. */
static void exercise(bp_six *x) {
    for (uint32_t i = 0; i < x->n_recs; i++) {
        bp_six_rec r;
        bp_six_rec_get(x, i, &r);
        bp_id id;
        bp_six_id(x, i, &id);
        (void)bp_six_find_id(x, &id);
        (void)bp_six_find_seq(x, r.seq);
    }
    for (uint32_t e = 0; e < x->n_ents; e++) {
        bp_six_ent en;
        bp_six_ent_get(x, e, &en);
        for (uint32_t k = 0; k < en.count; k++)
            (void)bp_six_post(x, en.post + k);
        (void)bp_six_find_ent(x, en.name, en.len, NULL);
    }
}

/* A small file: three records, two entities, one scope, one key; dense or with holes and ids
 * out of order (so that every block has bytes). */
static void small(tb *t, bool holes) {
    static const spec s[] = {{"acct:1", "bank", 0x1001, 1, 30},
                             {"acct:2", "bank", 0x1002, 2, 31},
                             {"acct:1", "bank", 0x1001, 3, 32}};
    static const char *const ents[] = {"acct:1", "acct:2"}, *const scopes[] = {"bank"};
    static const uint64_t seqs[] = {5, 9, 10};
    build(t, s, 3, ents, 2, scopes, 1);
    add_idem(t, 1, "k-1");
    if (holes) {
        set_seqs(t, seqs);
        t->recs[0].id = mkid(9);
    }
}

/* Every byte flipped and every truncation: bp_six_open or bp_six_check_all fails. */
static void test_damage(void) {
    for (int holes = 0; holes < 2; holes++) {
        tb t;
        small(&t, holes);
        bp_buf b = {0};
        CHECK_EQ(encode(&t, &b), 0);
        size_t n = b.len, survived = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t *c = malloc(n); /* exactly n: ASan sees a read past the end */
            CHECK(c);
            memcpy(c, b.data, n);
            c[i] ^= 0xFF;
            bp_six x;
            if (bp_six_open(&x, c, n, "f") == BP_OK && bp_six_check_all(&x, "f") == BP_OK) {
                fprintf(stderr, "byte %zu flipped: still accepted\n", i);
                exercise(&x);
                survived++;
            }
            free(c);
        }
        CHECK_EQ(survived, 0);
        for (size_t len = 0; len < n; len++) {
            uint8_t *c = malloc(len ? len : 1);
            CHECK(c);
            memcpy(c, b.data, len);
            bp_six x;
            if (bp_six_open(&x, c, len, "f") == BP_OK && bp_six_check_all(&x, "f") == BP_OK) {
                fprintf(stderr, "cut to %zu bytes: still accepted\n", len);
                survived++;
            }
            free(c);
        }
        CHECK_EQ(survived, 0);
        bp_buf_free(&b);
    }
}

/* The header's messages. */
static void test_open_messages(void) {
    tb t;
    small(&t, false);
    bp_buf b = {0};
    bp_six x;
    CHECK_EQ(encode(&t, &b), 0);
    uint8_t *p = b.data;
    CHECK_FAILS(bp_six_open(&x, p, 3, "000007.fidx"), BP_ECORRUPT, "000007.fidx");
    p[0] = 'X';
    CHECK_FAILS(bp_six_open(&x, p, b.len, "f"), BP_ECORRUPT, "bad magic");
    p[0] = 'B';
    p[5] = 3;
    CHECK_FAILS(bp_six_open(&x, p, b.len, "f"), BP_EVERSION, "version 3");
    p[5] = 1; /* (version 1: before PAGES, not read) */
    CHECK_FAILS(bp_six_open(&x, p, b.len, "f"), BP_EVERSION, "version 1");
    p[5] = 2;
    CHECK_FAILS(bp_six_open(&x, p, 200, "f"), BP_ECORRUPT, "cut short");
    p[100] ^= 1;
    CHECK_FAILS(bp_six_open(&x, p, b.len, "f"), BP_ECORRUPT, "header CRC");
    p[100] ^= 1;
    CHECK_OK(bp_six_open(&x, p, b.len, "f"));
    p[x.off[BP_SIXB_NAMES] + x.len[BP_SIXB_NAMES] - 1] ^= 1; /* a scope name's byte */
    CHECK_OK(bp_six_open(&x, p, b.len, "f"));
    /* in place: usable until a lookup reads the damaged page */
    CHECK(bp_six_need(&x, BP_SIXB_NAMES));
    CHECK(bp_six_need(&x, BP_SIXB_ENTS));
    CHECK(!bp_six_failed(&x));
    CHECK_EQ(bp_six_find_scope(&x, "bank", 4), -1);
    CHECK(bp_six_failed(&x));
    CHECK(!bp_six_need(&x, BP_SIXB_NAMES));
    CHECK(bp_six_need(&x, BP_SIXB_ENTS)); /* (its own bytes: good) */
    /* whole */
    CHECK_OK(bp_six_open(&x, p, b.len, "f"));
    CHECK(bp_six_check_block(&x, BP_SIXB_RECS));
    CHECK_FAILS(bp_six_check_all(&x, "f"), BP_ECORRUPT, "entities");
    CHECK(!bp_six_check_block(&x, BP_SIXB_NAMES));
    CHECK(!bp_six_check_block(&x, BP_SIXB_ENTS)); /* it reads the names */
    CHECK(!bp_six_check_block(&x, BP_SIXB_SCOPES));
    CHECK(bp_six_check_block(&x, BP_SIXB_IDEM));
    CHECK(!bp_six_check_block(&x, BP_SIXB_NBLOCKS)); /* no such block */
    CHECK(!bp_six_check_block(&x, 40));
    CHECK(!bp_six_need(&x, BP_SIXB_NBLOCKS));
    bp_buf_free(&b);
}

/* Make the CRCs right after an edit (pages, blocks, header). */
static void recrc(uint8_t *p, size_t n) {
    bp_six_reseal(p, n);
}

/* One edit of a crafted file: up to three big-endian writes in one block (in the header for
 * BP_SIXB_NBLOCKS), on file 0 (small), 1 (small with holes and ids out of order) or 2
 * (dense7). */
typedef struct crafted {
    const char *what;
    unsigned block; /* the block edited, that must fail; BP_SIXB_NBLOCKS: bp_six_open must */
    unsigned file;
    struct {
        unsigned at, width; /* offset in the block, 1, 2, 4 or 8 bytes (0: no write) */
        uint64_t value;
    } w[3];
} crafted;

static void put_be(uint8_t *p, unsigned width, uint64_t v) {
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

/* The blocks whose checks need block k's (six.h): ENTS needs NAMES; SCOPES needs NAMES and
 * RECS; KINDS needs RECS; POST needs ENTS and RECS. The closure: what fails with k. */
static uint32_t failing_with(unsigned k) {
    static const uint32_t needs[BP_SIXB_NBLOCKS] = {
        [BP_SIXB_ENTS] = 1u << BP_SIXB_NAMES,
        [BP_SIXB_SCOPES] = 1u << BP_SIXB_NAMES | 1u << BP_SIXB_RECS,
        [BP_SIXB_KINDS] = 1u << BP_SIXB_RECS,
        [BP_SIXB_POST] = 1u << BP_SIXB_ENTS | 1u << BP_SIXB_RECS,
    };
    uint32_t bad = 1u << k, before;
    do {
        before = bad;
        for (unsigned o = 0; o < BP_SIXB_NBLOCKS; o++)
            if (needs[o] & bad) bad |= 1u << o;
    } while (bad != before);
    return bad;
}

/* c on file: block fails (with those whose checks need it) and the others pass; when fails is
 * BP_SIXB_NBLOCKS, bp_six_open fails. */
static void crafted_case(const crafted *c, const bp_buf *file, unsigned fails) {
    size_t n = file->len;
    uint8_t *p = malloc(n);
    CHECK(p);
    memcpy(p, file->data, n);
    unsigned k = c->block;
    uint32_t base = k < BP_SIXB_NBLOCKS ? bp_get_be32(p + 136 + 12 * k) : 0;
    for (int i = 0; i < 3; i++)
        if (c->w[i].width) put_be(p + base + c->w[i].at, c->w[i].width, c->w[i].value);
    recrc(p, n);
    bp_six x;
    bp_status rc = bp_six_open(&x, p, n, "f");
    bool need[BP_SIXB_NBLOCKS], again = false;
    bp_status all = BP_OK;
    if (rc == BP_OK) {
        for (unsigned o = 0; o < BP_SIXB_NBLOCKS; o++)
            need[o] = bp_six_check_block(&x, o);
        again = k < BP_SIXB_NBLOCKS && bp_six_check_block(&x, k);
        all = bp_six_check_all(&x, "f");
    }
    free(p);
    if (fails == BP_SIXB_NBLOCKS) {
        CHECK_EQ(rc, BP_ECORRUPT);
        return;
    }
    CHECK_OK(rc);
    uint32_t bad = failing_with(fails);
    for (unsigned o = 0; o < BP_SIXB_NBLOCKS; o++)
        CHECK_EQ(need[o], !(bad & (1u << o)));
    CHECK(!again || fails != k);
    CHECK_EQ(all, BP_ECORRUPT);
}

/* Bounds broken behind valid CRCs: open passes, the block fails bp_six_need (and keeps
 * failing), check_all fails, and every other block still passes but those whose checks need
 * the broken one. small(): records 0 and 2 of "acct:1", record 1 of "acct:2", one scope,
 * kinds 0x1001 x2 and 0x1002, a key on record 1; NAMES "acct:1acct:2bank". */
static void test_crafted(void) {
    static const crafted c[] = {
        {"a record's entity >= n_ents", BP_SIXB_RECS, 0, {{12 + 4, 4, 2}}},
        {"a record's scope >= n_scopes", BP_SIXB_RECS, 0, {{24 + 8, 2, 1}}},
        {"a frame that starts in the segment header", BP_SIXB_RECS, 0, {{0, 4, 47}}},
        {"offsets not ascending", BP_SIXB_RECS, 0, {{12, 4, 48}}},
        {"a frame of prefix only", BP_SIXB_RECS, 0, {{24, 4, 86 + 8}}},
        {"ids not ascending", BP_SIXB_IDS, 0, {{15, 1, 3}}},
        {"ids ascending but not from min_id", BP_SIXB_IDS, 0, {{15, 1, 0}}},
        {"an id pair naming record n", BP_SIXB_IDS, 1, {{16, 4, 3}}},
        {"id pairs not sorted", BP_SIXB_IDS, 1, {{15, 1, 0xEE}}},
        {"a record twice in the id pairs", BP_SIXB_IDS, 1, {{20 + 16, 4, 1}}},
        {"seqs not starting at 0", BP_SIXB_SEQS, 1, {{0, 4, 1}}},
        {"seqs not ascending", BP_SIXB_SEQS, 1, {{4, 4, 6}}},
        {"last seq not last_seq", BP_SIXB_SEQS, 1, {{8, 4, 6}}},
        {"entity count sum != n_recs", BP_SIXB_ENTS, 0, {{24 + 16, 4, 2}}},
        {"entity post not the running sum", BP_SIXB_ENTS, 0, {{24 + 20, 4, 1}}},
        {"entity with count 0", BP_SIXB_ENTS, 0, {{16, 4, 0}}},
        {"entity first_clock 0", BP_SIXB_ENTS, 0, {{8, 8, 0}}},
        {"entity clocks past 2^64", BP_SIXB_ENTS, 0, {{8, 8, UINT64_MAX - 1}}},
        {"entity names not sorted", BP_SIXB_ENTS, 0, {{24 + 4, 2, 5}}},
        {"entity name past NAMES", BP_SIXB_ENTS, 0, {{24 + 0, 4, 14}}},
        {"entity name empty", BP_SIXB_ENTS, 0, {{4, 2, 0}}},
        {"entity reserved bytes", BP_SIXB_ENTS, 0, {{6, 2, 1}}},
        {"a posting >= n_recs", BP_SIXB_POST, 0, {{4, 4, 3}}},
        {"a posting of another entity", BP_SIXB_POST, 0, {{4, 4, 1}}},
        {"postings not ascending", BP_SIXB_POST, 0, {{0, 4, 2}, {4, 4, 0}}},
        {"a posting twice", BP_SIXB_POST, 0, {{4, 4, 0}}},
        {"scope count sum != n_recs", BP_SIXB_SCOPES, 0, {{8, 4, 2}}},
        {"scope counts adding up but wrong", BP_SIXB_SCOPES, 2, {{8, 4, 4}, {12 + 8, 4, 3}}},
        {"scope name past NAMES", BP_SIXB_SCOPES, 0, {{0, 4, 13}}},
        {"kinds not ascending", BP_SIXB_KINDS, 0, {{8, 2, 0x1001}}},
        {"kind count 0", BP_SIXB_KINDS, 0, {{4, 4, 0}}},
        {"kind count sum != n_recs", BP_SIXB_KINDS, 0, {{4, 4, 1}}},
        {"kind counts adding up but wrong", BP_SIXB_KINDS, 2, {{4, 4, 3}, {8 + 4, 4, 2}}},
        {"a record's kind not listed", BP_SIXB_KINDS, 0, {{8, 2, 0x1005}}},
        {"kind reserved bytes", BP_SIXB_KINDS, 0, {{2, 2, 1}}},
        {"a key's record >= n_recs", BP_SIXB_IDEM, 0, {{8, 4, 3}}},
        {"n_recs != the blocks' sizes", BP_SIXB_NBLOCKS, 0, {{48, 4, 4}}},
        {"unknown flag", BP_SIXB_NBLOCKS, 0, {{12, 4, 9}}},
        {"first_seq 0", BP_SIXB_NBLOCKS, 0, {{32, 8, 0}}},
        {"dense but last_seq wrong", BP_SIXB_NBLOCKS, 0, {{40, 8, 103}}},
        {"frames_end past seg_size", BP_SIXB_NBLOCKS, 0, {{72, 8, 100}}},
        {"min_id above max_id", BP_SIXB_NBLOCKS, 0, {{104, 1, 0x02}}},
        {"n_scopes 0", BP_SIXB_NBLOCKS, 0, {{56, 4, 0}}},
        {"n_kinds > n_recs", BP_SIXB_NBLOCKS, 0, {{60, 4, 4}}},
        {"a block past the end", BP_SIXB_NBLOCKS, 0, {{136 + 12 * 8, 4, 1000}}},
        {"a block one byte past the end", BP_SIXB_NBLOCKS, 0, {{140 + 12 * 9, 4, 33}}},
        {"pages not the blocks' count", BP_SIXB_NBLOCKS, 0, {{140 + 12 * 9, 4, 28}}},
        {"a block longer than its count", BP_SIXB_NBLOCKS, 0, {{140, 4, 37}}},
        {"a block inside the header", BP_SIXB_NBLOCKS, 0, {{136, 4, 0}}},
    };
    bp_buf b[3] = {{0}, {0}, {0}};
    for (int f = 0; f < 3; f++) {
        tb t;
        if (f < 2)
            small(&t, f);
        else
            dense7(&t);
        CHECK_EQ(encode(&t, &b[f]), 0);
    }
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int before = t_failures;
        crafted_case(&c[i], &b[c[i].file], c[i].block);
        if (t_failures != before) {
            fprintf(stderr, "crafted case: %s\n", c[i].what);
            break;
        }
    }
    /* entity counts that add up but are wrong: ENTS alone cannot tell, the postings (checked
     * against the records' entities) can */
    static const crafted counts = {"entity counts adding up but wrong",
                                   BP_SIXB_ENTS,
                                   0,
                                   {{16, 4, 1}, {24 + 16, 4, 2}, {24 + 20, 4, 1}}};
    crafted_case(&counts, &b[0], BP_SIXB_POST);
    for (int f = 0; f < 3; f++)
        bp_buf_free(&b[f]);
}

/* IDEM out of order behind valid CRCs: two hashes swapped; the two records of one key swapped,
 * or the same record twice. */
static void test_crafted_idem(void) {
    tb t;
    dense7(&t);
    bp_buf b = {0};
    CHECK_EQ(encode(&t, &b), 0);
    bp_six x;
    CHECK_OK(bp_six_open(&x, b.data, b.len, "f"));
    CHECK_EQ(x.n_idems, 4);
    uint32_t lo, hi, base = x.off[BP_SIXB_IDEM];
    bp_six_idem_range(&x, bp_six_key_hash("k-b", 3), &lo, &hi);
    CHECK_EQ(hi - lo, 2);
    for (int edit = 0; edit < 3; edit++) {
        uint8_t *p = malloc(b.len);
        CHECK(p);
        memcpy(p, b.data, b.len);
        uint8_t *e = p + base;
        uint8_t tmp[12];
        if (edit == 0) { /* entries 0 and 1 swapped: hashes descend */
            memcpy(tmp, e, 12);
            memcpy(e, e + 12, 12);
            memcpy(e + 12, tmp, 12);
        } else { /* the key's records 4, 3; or 3, 3 */
            bp_put_be32(e + 12 * lo + 8, edit == 1 ? 4 : 3);
            bp_put_be32(e + 12 * (lo + 1) + 8, 3);
        }
        recrc(p, b.len);
        bp_six y;
        bp_status rc = bp_six_open(&y, p, b.len, "f");
        bool idem = bp_six_check_block(&y, BP_SIXB_IDEM),
             ents = bp_six_check_block(&y, BP_SIXB_ENTS);
        free(p);
        CHECK_OK(rc);
        CHECK(!idem);
        CHECK(ents);
    }
    bp_buf_free(&b);
}

int main(void) {
    RUN(test_key_hash);
    RUN(test_dense_in_order);
    RUN(test_ids_out_of_order);
    RUN(test_holes);
    RUN(test_emap_view);
    RUN(test_refusals);
    RUN(test_damage);
    RUN(test_open_messages);
    RUN(test_crafted);
    RUN(test_crafted_idem);
    T_DONE();
}
