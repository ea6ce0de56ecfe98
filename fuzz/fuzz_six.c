/* Fuzz target: segment index files (src/format/six.h, doc/FORMAT.md "Segment index files"),
 * the input as a file and again with its CRCs made right (bp_six_reseal: pages, blocks,
 * header), so the fuzzer reaches the checks behind them. First, in place (as readers use a
 * file, no whole check): every lookup, over every index and a few past them, on whatever the
 * file holds, must stay inside it and give what it read or mark the file failed. Then each
 * block that passes bp_six_check_block is read whole: every
 * record by index and seq (and seqs that are not there), every id, entity and its postings,
 * scope, kind and key. Beyond "no crash, no read outside the file": what six.h promises of a
 * block that passed holds (contiguous frames, postings that are the entity's records, counts
 * that are the records', lookups that find what the tables list). */
#include "format/six.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static const uint8_t *blk(const bp_six *x, unsigned b) {
    return x->p + x->off[b];
}

/* Records: contiguous frames from the segment header to frames_end, seqs ascending in range;
 * each seq finds its record, the seqs between two records none. */
static void records(bp_six *x) {
    if (!bp_six_check_block(x, BP_SIXB_RECS)) return;
    if ((x->flags & BP_SIX_HOLES) && !bp_six_check_block(x, BP_SIXB_SEQS)) return;
    uint64_t end = BP_SEG_HEADER_SIZE, prev = 0;
    for (uint32_t i = 0; i < x->n_recs; i++) {
        bp_six_rec r;
        bp_six_rec_get(x, i, &r);
        MUST(r.entity < x->n_ents && r.scope < x->n_scopes);
        MUST(i ? r.offset == end : r.offset >= BP_SEG_HEADER_SIZE);
        MUST(r.frame_len > BP_FRAME_PREFIX && r.frame_len <= BP_FRAME_PREFIX + BP_FRAME_MAX_BODY);
        MUST(r.seq >= x->first_seq && r.seq <= x->last_seq && (i == 0 || r.seq > prev));
        MUST(i || r.seq == x->first_seq);
        MUST(bp_six_find_seq(x, r.seq) == i);
        if (i && r.seq > prev + 1) {
            MUST(bp_six_find_seq(x, prev + 1) == -1);
            MUST(bp_six_find_seq(x, r.seq - 1) == -1);
        }
        end = (uint64_t)r.offset + r.frame_len;
        prev = r.seq;
    }
    MUST(end == x->pair.frames_end && prev == x->last_seq);
    MUST(bp_six_find_seq(x, x->first_seq - 1) == -1);
    MUST(bp_six_find_seq(x, x->last_seq + 1) == -1);
}

/* Ids: each found, and its record has it. */
static void ids(bp_six *x) {
    if (!bp_six_check_block(x, BP_SIXB_IDS)) return;
    bool in_order = x->flags & BP_SIX_IDS_IN_ORDER;
    size_t stride = in_order ? 16 : 20;
    for (uint32_t k = 0; k < x->n_recs; k++) {
        bp_id id, back;
        memcpy(id.b, blk(x, BP_SIXB_IDS) + stride * k, 16);
        int64_t r = bp_six_find_id(x, &id);
        MUST(r >= 0 && r < x->n_recs);
        if (in_order) MUST(r == k);
        if (in_order || k < 64) { /* (out of order, bp_six_id scans) */
            bp_six_id(x, (uint32_t)r, &back);
            MUST(memcmp(back.b, id.b, 16) == 0);
        }
    }
    bp_id lo = {{0}}, hi;
    memset(hi.b, 0xFF, 16);
    if (memcmp(x->min_id.b, lo.b, 16)) MUST(bp_six_find_id(x, &lo) == -1);
    if (memcmp(x->max_id.b, hi.b, 16)) MUST(bp_six_find_id(x, &hi) == -1);
}

/* Entities: names in order inside NAMES, each found by name (a prefix of it finds its place
 * or before), postings ascending and of the entity. */
static void entities(bp_six *x) {
    if (!bp_six_check_block(x, BP_SIXB_ENTS)) return;
    bool post = bp_six_check_block(x, BP_SIXB_POST), recs = bp_six_check_block(x, BP_SIXB_RECS);
    const char *names = (const char *)blk(x, BP_SIXB_NAMES);
    uint64_t sum = 0;
    for (uint32_t e = 0; e < x->n_ents; e++) {
        bp_six_ent en;
        bp_six_ent_get(x, e, &en);
        MUST(en.len && en.name >= names && en.name + en.len <= names + x->len[BP_SIXB_NAMES]);
        MUST(en.first_clock && en.count && en.post == sum);
        sum += en.count;
        uint32_t at = UINT32_MAX;
        MUST(bp_six_find_ent(x, en.name, en.len, &at) == e && at == e);
        (void)bp_six_find_ent(x, en.name, en.len - 1u, &at);
        MUST(at <= e);
        if (!post) continue;
        for (uint32_t k = 0; k < en.count; k++) {
            uint32_t r = bp_six_post(x, en.post + k);
            MUST(r < x->n_recs && (k == 0 || r > bp_six_post(x, en.post + k - 1)));
            if (recs) {
                bp_six_rec rec;
                bp_six_rec_get(x, r, &rec);
                MUST(rec.entity == e);
            }
        }
    }
    MUST(sum == x->n_recs);
}

/* Scopes and kinds: each found, their counts the records'. */
static void scopes_kinds(bp_six *x) {
    uint64_t sum = 0;
    if (bp_six_check_block(x, BP_SIXB_SCOPES)) {
        for (uint32_t s = 0; s < x->n_scopes; s++) {
            const char *name;
            uint16_t len;
            uint32_t count;
            bp_six_scope_get(x, s, &name, &len, &count);
            MUST(count && bp_six_find_scope(x, name, len) == s);
            sum += count;
        }
        MUST(sum == x->n_recs);
    }
    if (bp_six_check_block(x, BP_SIXB_KINDS)) {
        sum = 0;
        for (uint32_t k = 0; k < x->n_kinds; k++) {
            uint16_t kind = bp_get_be16(blk(x, BP_SIXB_KINDS) + 8 * (size_t)k);
            uint32_t count = bp_six_kind_count(x, kind);
            MUST(count == bp_get_be32(blk(x, BP_SIXB_KINDS) + 8 * (size_t)k + 4) && count);
            sum += count;
            if (kind < 0xFFFF &&
                (k + 1 == x->n_kinds ||
                 bp_get_be16(blk(x, BP_SIXB_KINDS) + 8 * (size_t)k + 8) != kind + 1))
                MUST(bp_six_kind_count(x, (uint16_t)(kind + 1)) == 0);
        }
        MUST(sum == x->n_recs);
        if (bp_six_check_block(x, BP_SIXB_RECS))
            for (uint32_t i = 0; i < x->n_recs; i++) {
                bp_six_rec r;
                bp_six_rec_get(x, i, &r);
                MUST(bp_six_kind_count(x, r.kind) > 0);
            }
    }
}

/* Keys: each entry's hash leads to a range that holds it, its record in range. */
static void keys(bp_six *x) {
    if (!bp_six_check_block(x, BP_SIXB_IDEM)) return;
    for (uint32_t k = 0; k < x->n_idems; k++) {
        uint64_t h = bp_get_be64(blk(x, BP_SIXB_IDEM) + 12 * (size_t)k);
        uint32_t lo, hi;
        bp_six_idem_range(x, h, &lo, &hi);
        MUST(lo <= k && k < hi && hi <= x->n_idems);
        MUST(bp_six_idem_rec(x, k) < x->n_recs);
    }
}

/* In place: every lookup on whatever the file holds. What each gives when no check failed is
 * within the bounds six.h promises; reads stay inside the file (ASan). */
static void in_place(bp_six *x) {
    const uint8_t *lo = x->p, *hi = x->p + x->n;
    for (uint32_t i = 0; i < x->n_recs + 2 && i < 4096; i++) {
        bp_six_rec r;
        bp_six_rec_get(x, i, &r);
        if (!bp_six_failed(x) && i < x->n_recs)
            MUST(r.entity < x->n_ents && r.scope < x->n_scopes && r.offset >= BP_SEG_HEADER_SIZE &&
                 (uint64_t)r.offset + r.frame_len <= x->pair.frames_end);
        (void)bp_six_find_seq(x, x->first_seq + i);
        bp_id id;
        memset(id.b, 0, 16);
        if ((x->flags & BP_SIX_IDS_IN_ORDER) || i < 64) bp_six_id(x, i, &id); /* (else: a scan) */
        int64_t k = bp_six_find_id(x, &id);
        MUST(k < (int64_t)x->n_recs);
        uint32_t post = bp_six_post(x, i);
        MUST(post < x->n_recs || post == 0);
    }
    for (uint32_t e = 0; e < x->n_ents + 2 && e < 4096; e++) {
        bp_six_ent en;
        bp_six_ent_get(x, e, &en);
        if (en.len) {
            MUST((const uint8_t *)en.name >= lo && (const uint8_t *)en.name + en.len <= hi);
            MUST((uint64_t)en.post + en.count <= x->n_recs);
            uint32_t at;
            int64_t f = bp_six_find_ent(x, en.name, en.len, &at);
            MUST(f < (int64_t)x->n_ents && at <= x->n_ents);
        }
    }
    for (uint32_t s = 0; s < x->n_scopes + 2 && s < 4096; s++) {
        const char *name;
        uint16_t len;
        uint32_t count;
        bp_six_scope_get(x, s, &name, &len, &count);
        if (len) {
            MUST((const uint8_t *)name >= lo && (const uint8_t *)name + len <= hi);
            MUST(bp_six_find_scope(x, name, len) < (int64_t)x->n_scopes);
        }
    }
    for (uint32_t k = 0; k < x->n_kinds + 2 && k < 4096; k++) {
        uint16_t kind;
        uint32_t count;
        bp_six_kind_get(x, k, &kind, &count);
        (void)bp_six_kind_count(x, kind);
        MUST(bp_six_find_kind(x, kind) < (int64_t)x->n_kinds);
    }
    for (uint32_t k = 0; k < x->n_idems + 2 && k < 4096; k++) {
        uint32_t a, b;
        bp_six_idem_range(x, (uint64_t)k * 0x9E3779B97F4A7C15ull, &a, &b);
        MUST(a <= b && b <= x->n_idems);
        MUST(bp_six_idem_rec(x, k) < x->n_recs || bp_six_failed(x));
    }
}

static void run(const uint8_t *p, size_t n) {
    bp_six x;
    if (bp_six_open(&x, p, n, "fuzz.fidx") != BP_OK) return;
    MUST(x.n_recs && x.first_seq && x.pair.frames_end <= x.pair.seg_size);
    in_place(&x);
    if (bp_six_open(&x, p, n, "fuzz.fidx") != BP_OK) abort(); /* (its bits cleared) */
    records(&x);
    ids(&x);
    entities(&x);
    scopes_kinds(&x);
    keys(&x);
    bp_status all = bp_six_check_all(&x, "fuzz.fidx");
    bool each = true;
    for (unsigned b = 0; b < BP_SIXB_NBLOCKS; b++)
        each &= bp_six_check_block(&x, b);
    MUST((all == BP_OK) == each);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size);
    /* the same with every CRC made right (blocks inside the input; the header last) */
    if (size >= BP_SIX_HEADER) {
        uint8_t *c = malloc(size);
        if (!c) return 0;
        memcpy(c, data, size);
        bp_six_reseal(c, size);
        run(c, size);
        free(c);
    }
    bp_err_clear();
    return 0;
}
