/* Segment index files: header check, block checks on first use, lookups (six.h,
 * doc/FORMAT.md "Segment index files"). */
#include "format/six.h"

#include <errno.h>
#include <stdlib.h>

uint64_t bp_six_key_hash(const char *key, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)key[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---------------------------------------------------------------- decoder */

bp_status bp_six_open(bp_six *x, const uint8_t *p, size_t n, const char *path) {
    memset(x, 0, sizeof *x);
    if (n < 8 || memcmp(p, "BPIX", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 0: not a segment index (bad magic)", path);
    unsigned v = bp_get_be16(p + 4);
    if (v != BP_SIX_VERSION)
        return bp_err(BP_EVERSION,
                      "%s: segment index version %u is not supported (this build reads "
                      "version %u)",
                      path, v, BP_SIX_VERSION);
    if (n < BP_SIX_HEADER || bp_get_be16(p + 6) != BP_SIX_HEADER)
        return bp_err(BP_ECORRUPT, "%s: header cut short (%zu bytes)", path, n);
    if (!bp_crc_tail_ok(p, BP_SIX_HEADER)) /* (its last 4 bytes: the CRC of the others) */
        return bp_err(BP_ECORRUPT, "%s: header CRC mismatch", path);
    x->p = p;
    x->n = n;
    x->pair.segno = bp_get_be32(p + 8);
    x->flags = bp_get_be32(p + 12);
    memcpy(x->pair.uuid, p + 16, 16);
    x->first_seq = bp_get_be64(p + 32);
    x->last_seq = bp_get_be64(p + 40);
    x->n_recs = bp_get_be32(p + 48);
    x->n_ents = bp_get_be32(p + 52);
    x->n_scopes = bp_get_be32(p + 56);
    x->n_kinds = bp_get_be32(p + 60);
    x->n_idems = bp_get_be32(p + 64);
    x->pair.footer_crc = bp_get_be32(p + 68);
    x->pair.seg_size = bp_get_be64(p + 72);
    x->pair.frames_end = bp_get_be64(p + 80);
    x->min_hlc = bp_get_be64(p + 88);
    x->max_hlc = bp_get_be64(p + 96);
    memcpy(x->min_id.b, p + 104, 16);
    memcpy(x->max_id.b, p + 120, 16);
    const char *why = NULL;
    uint64_t nr = x->n_recs;
    if (x->flags & ~(uint32_t)(BP_SIX_IDS_IN_ORDER | BP_SIX_HOLES | BP_SIX_SEALED))
        why = "unknown flags";
    else if (nr == 0 || x->n_ents == 0 || x->n_ents > nr || x->n_scopes == 0 ||
             x->n_scopes > 65535 || x->n_scopes > nr || x->n_kinds == 0 || x->n_kinds > nr)
        why = "counts out of range";
    else if (x->first_seq == 0 || x->last_seq < x->first_seq ||
             x->last_seq - x->first_seq < nr - 1 ||
             (!(x->flags & BP_SIX_HOLES) && x->last_seq - x->first_seq != nr - 1) ||
             x->last_seq - x->first_seq > UINT32_MAX)
        why = "seq range does not match the record count";
    else if (x->pair.frames_end > x->pair.seg_size || x->pair.frames_end > BP_SEG_END_MAX ||
             x->pair.frames_end < BP_SEG_HEADER_SIZE + nr * (BP_FRAME_PREFIX + 1))
        why = "frames end out of range";
    else if (memcmp(x->min_id.b, x->max_id.b, 16) > 0)
        why = "id range inverted";
    if (why) return bp_err(BP_ECORRUPT, "%s: header: %s", path, why);
    uint64_t want[BP_SIXB_NBLOCKS] = {
        nr * BP_SIX_REC_SIZE,
        nr * ((x->flags & BP_SIX_IDS_IN_ORDER) ? 16 : 20),
        (x->flags & BP_SIX_HOLES) ? nr * 4 : 0,
        (uint64_t)x->n_ents * BP_SIX_ENT_SIZE,
        nr * 4,
        (uint64_t)x->n_scopes * BP_SIX_SCOPE_SIZE,
        (uint64_t)x->n_kinds * BP_SIX_KIND_SIZE,
        (uint64_t)x->n_idems * BP_SIX_IDEM_SIZE,
        0,
        0, /* PAGES: 4 bytes per page of the others, known once their lengths are */
    };
    uint64_t pages = 0;
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        x->off[k] = bp_get_be32(p + 136 + 12 * k);
        x->len[k] = bp_get_be32(p + 140 + 12 * k);
        x->crc[k] = bp_get_be32(p + 144 + 12 * k);
        x->page0[k] = (uint32_t)pages;
        if (k == BP_SIXB_PAGES) want[k] = pages * 4;
        pages += ((uint64_t)x->len[k] + BP_SIX_PAGE - 1) / BP_SIX_PAGE;
        bool size_ok = k == BP_SIXB_NAMES ? x->len[k] >= 1 : x->len[k] == want[k];
        if (!size_ok || x->off[k] < BP_SIX_HEADER || (uint64_t)x->off[k] + x->len[k] > n)
            return bp_err(BP_ECORRUPT, "%s: header: block %u out of bounds (offset %u, %u bytes)",
                          path, k, x->off[k], x->len[k]);
    }
    return BP_OK;
}

#define BLK(x, k) ((x)->p + (x)->off[k])

static bool whole(bp_six *x, unsigned b);

static bool names_ok(const bp_six *x, const uint8_t *p, uint32_t n, size_t stride) {
    uint32_t names = x->len[BP_SIXB_NAMES];
    const uint8_t *nm = BLK(x, BP_SIXB_NAMES);
    for (uint32_t i = 0; i < n; i++, p += stride) {
        uint32_t o = bp_get_be32(p), l = bp_get_be16(p + 4);
        if (l == 0 || (uint64_t)o + l > names || bp_get_be16(p + 6) != 0) return false;
        if (i) {
            uint32_t po = bp_get_be32(p - stride), pl = bp_get_be16(p - stride + 4);
            if (bp_six_name_cmp((const char *)nm + po, pl, (const char *)nm + o, l) >= 0)
                return false;
        }
    }
    return true;
}

/* ID pairs (ids not in order): sorted by id, between min_id and max_id, each record once. */
static bool id_pairs_ok(const bp_six *x, const uint8_t *p) {
    uint32_t n = x->n_recs;
    uint8_t *seen = calloc((size_t)n / 8 + 1, 1);
    if (!seen) return false; /* (not usable now: the reader falls back on the footer) */
    bool ok =
        memcmp(p, x->min_id.b, 16) == 0 && memcmp(p + 20 * (size_t)(n - 1), x->max_id.b, 16) == 0;
    for (uint32_t i = 0; i < n && ok; i++) {
        const uint8_t *e = p + 20 * (size_t)i;
        uint32_t r = bp_get_be32(e + 16);
        ok = r < n && !(i && memcmp(e - 20, e, 16) > 0) && !(seen[r / 8] & (1u << (r % 8)));
        if (ok) seen[r / 8] |= (uint8_t)(1u << (r % 8));
    }
    free(seen);
    return ok;
}

/* POST, with ENTS and RECS: each entity's postings are records of that entity, ascending. As
 * the entities' counts add up to n_recs, they partition the records. */
static bool postings_ok(bp_six *x, const uint8_t *p) {
    if (!whole(x, BP_SIXB_ENTS) || !whole(x, BP_SIXB_RECS)) return false;
    const uint8_t *ents = BLK(x, BP_SIXB_ENTS), *recs = BLK(x, BP_SIXB_RECS);
    for (uint32_t e = 0; e < x->n_ents; e++) {
        const uint8_t *r = ents + (size_t)e * BP_SIX_ENT_SIZE;
        uint32_t post = bp_get_be32(r + 20), count = bp_get_be32(r + 16);
        for (uint32_t k = post; k < post + count; k++) {
            uint32_t rec = bp_get_be32(p + 4 * (size_t)k);
            if (rec >= x->n_recs || (k > post && rec <= bp_get_be32(p + 4 * (size_t)(k - 1))) ||
                bp_get_be32(recs + (size_t)rec * BP_SIX_REC_SIZE + 4) != e)
                return false;
        }
    }
    return true;
}

/* SCOPES, with RECS: each scope's count is the number of records naming it, at least 1. */
static bool scopes_ok(bp_six *x, const uint8_t *p) {
    if (!whole(x, BP_SIXB_RECS)) return false;
    uint32_t *tally = calloc(x->n_scopes, sizeof *tally);
    if (!tally) return false;
    const uint8_t *recs = BLK(x, BP_SIXB_RECS);
    for (uint32_t i = 0; i < x->n_recs; i++)
        tally[bp_get_be16(recs + (size_t)i * BP_SIX_REC_SIZE + 8)]++;
    bool ok = true;
    for (uint32_t s = 0; s < x->n_scopes && ok; s++)
        ok = tally[s] && bp_get_be32(p + 12 * (size_t)s + 8) == tally[s];
    free(tally);
    return ok;
}

/* The entry of kind in the nk entries of KINDS at p, or nk. */
static uint32_t kind_find_raw(const uint8_t *p, uint32_t nk, uint16_t kind) {
    uint32_t lo = 0, hi = nk;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bp_get_be16(p + 8 * (size_t)mid) < kind)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nk && bp_get_be16(p + 8 * (size_t)lo) == kind ? lo : nk;
}

/* KINDS, with RECS: ascending kinds, each with the number of records of that kind, at least
 * 1; no record of another kind. */
static bool kinds_ok(bp_six *x, const uint8_t *p) {
    uint32_t nk = x->n_kinds;
    for (uint32_t k = 0; k < nk; k++) {
        const uint8_t *r = p + 8 * (size_t)k;
        if (bp_get_be16(r + 2) != 0 || (k && bp_get_be16(r) <= bp_get_be16(r - 8))) return false;
    }
    if (!whole(x, BP_SIXB_RECS)) return false;
    uint32_t *tally = calloc(nk, sizeof *tally);
    if (!tally) return false;
    const uint8_t *recs = BLK(x, BP_SIXB_RECS);
    bool ok = true;
    for (uint32_t i = 0; i < x->n_recs && ok; i++) {
        uint32_t k = kind_find_raw(p, nk, bp_get_be16(recs + (size_t)i * BP_SIX_REC_SIZE + 10));
        ok = k < nk;
        if (ok) tally[k]++;
    }
    for (uint32_t k = 0; k < nk && ok; k++)
        ok = tally[k] && bp_get_be32(p + 8 * (size_t)k + 4) == tally[k];
    free(tally);
    return ok;
}

/* ---------------------------------------------------------------- pages */

static void fail(bp_six *x, unsigned b) {
    __atomic_fetch_or(&x->bad, 1u << b, __ATOMIC_RELEASE);
}

/* PAGES checked whole (once). */
static bool pages_table(bp_six *x) {
    const uint32_t bit = 1u << BP_SIXB_PAGES;
    uint32_t c = __atomic_load_n(&x->checked, __ATOMIC_ACQUIRE);
    if (c & bit) return true;
    if (__atomic_load_n(&x->bad, __ATOMIC_ACQUIRE) & bit) return false;
    bool ok = bp_crc32(BLK(x, BP_SIXB_PAGES), x->len[BP_SIXB_PAGES]) == x->crc[BP_SIXB_PAGES];
    __atomic_fetch_or(ok ? &x->checked : &x->bad, bit, __ATOMIC_RELEASE);
    return ok;
}

/* Page j of block b against its CRC in PAGES. */
static bool page_ok(const bp_six *x, unsigned b, uint64_t j) {
    uint64_t start = j * BP_SIX_PAGE, len = x->len[b] - start;
    if (len > BP_SIX_PAGE) len = BP_SIX_PAGE;
    uint32_t want = bp_get_be32(BLK(x, BP_SIXB_PAGES) + 4 * ((uint64_t)x->page0[b] + j));
    return bp_crc32(BLK(x, b) + start, (size_t)len) == want;
}

/* The pages of block b holding bytes [off, off + len) (within it) checked, each once. */
static bool pages_ok(bp_six *x, unsigned b, uint64_t off, uint64_t len) {
    if (!len || (__atomic_load_n(&x->checked, __ATOMIC_ACQUIRE) & (1u << b))) return true;
    if (!pages_table(x)) return false;
    for (uint64_t j = off / BP_SIX_PAGE, last = (off + len - 1) / BP_SIX_PAGE; j <= last; j++) {
        uint64_t i = (uint64_t)x->page0[b] + j;
        uint32_t bit = 1u << (i % 32);
        if (i < BP_SIX_PAGE_BITS && (__atomic_load_n(&x->pages[i / 32], __ATOMIC_ACQUIRE) & bit))
            continue;
        if (!page_ok(x, b, j)) return false;
        if (i < BP_SIX_PAGE_BITS) __atomic_fetch_or(&x->pages[i / 32], bit, __ATOMIC_RELEASE);
    }
    return true;
}

/* Zeros for a read that failed its check (the longest read is a name: 65535 bytes). */
static const uint8_t ZEROS[65536];

/* The len bytes at off in block b, checked (bounds and pages); ZEROS, the block marked bad,
 * when they cannot be. */
static const uint8_t *at(bp_six *x, unsigned b, uint64_t off, uint64_t len) {
    if (off + len > x->len[b] || len > sizeof ZEROS || !pages_ok(x, b, off, len)) {
        fail(x, b);
        return ZEROS;
    }
    return BLK(x, b) + off;
}

/* ---------------------------------------------------------------- whole checks */

static bool check_block(bp_six *x, unsigned k) {
    const uint8_t *p = BLK(x, k);
    uint32_t n = x->n_recs;
    if (bp_crc32(p, x->len[k]) != x->crc[k]) return false;
    if (k == BP_SIXB_PAGES) return true;
    if (!whole(x, BP_SIXB_PAGES)) return false;
    for (uint64_t j = 0; j * BP_SIX_PAGE < x->len[k]; j++)
        if (!page_ok(x, k, j)) return false;
    switch (k) {
    case BP_SIXB_RECS:
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *r = p + (size_t)i * BP_SIX_REC_SIZE;
            uint64_t o = bp_get_be32(r);
            uint64_t next = i + 1 < n ? bp_get_be32(r + BP_SIX_REC_SIZE) : x->pair.frames_end;
            if (o < BP_SEG_HEADER_SIZE || next <= o + BP_FRAME_PREFIX ||
                next - o > BP_FRAME_PREFIX + BP_FRAME_MAX_BODY || bp_get_be32(r + 4) >= x->n_ents ||
                bp_get_be16(r + 8) >= x->n_scopes)
                return false;
        }
        return true;
    case BP_SIXB_IDS:
        if (x->flags & BP_SIX_IDS_IN_ORDER) {
            for (uint32_t i = 1; i < n; i++)
                if (memcmp(p + 16 * (size_t)(i - 1), p + 16 * (size_t)i, 16) >= 0) return false;
            return memcmp(p, x->min_id.b, 16) == 0 &&
                   memcmp(p + 16 * (size_t)(n - 1), x->max_id.b, 16) == 0;
        }
        return id_pairs_ok(x, p);
    case BP_SIXB_SEQS:
        if (!(x->flags & BP_SIX_HOLES)) return true;
        if (bp_get_be32(p) != 0 ||
            bp_get_be32(p + 4 * (size_t)(n - 1)) != x->last_seq - x->first_seq)
            return false;
        for (uint32_t i = 1; i < n; i++)
            if (bp_get_be32(p + 4 * (size_t)i) <= bp_get_be32(p + 4 * (size_t)(i - 1)))
                return false;
        return true;
    case BP_SIXB_ENTS: {
        if (!whole(x, BP_SIXB_NAMES) || !names_ok(x, p, x->n_ents, BP_SIX_ENT_SIZE)) return false;
        uint64_t at = 0;
        for (uint32_t e = 0; e < x->n_ents; e++) {
            const uint8_t *r = p + (size_t)e * BP_SIX_ENT_SIZE;
            uint64_t clock = bp_get_be64(r + 8), count = bp_get_be32(r + 16);
            if (clock == 0 || count == 0 || clock + count < clock || bp_get_be32(r + 20) != at)
                return false;
            at += count;
        }
        return at == n;
    }
    case BP_SIXB_POST:
        return postings_ok(x, p);
    case BP_SIXB_SCOPES:
        return whole(x, BP_SIXB_NAMES) && names_ok(x, p, x->n_scopes, BP_SIX_SCOPE_SIZE) &&
               scopes_ok(x, p);
    case BP_SIXB_KINDS:
        return kinds_ok(x, p);
    case BP_SIXB_IDEM:
        for (uint32_t i = 0; i < x->n_idems; i++) {
            const uint8_t *r = p + 12 * (size_t)i;
            if (bp_get_be32(r + 8) >= n) return false;
            if (i) {
                uint64_t ph = bp_get_be64(r - 12), h = bp_get_be64(r);
                if (ph > h || (ph == h && bp_get_be32(r - 4) >= bp_get_be32(r + 8))) return false;
            }
        }
        return true;
    case BP_SIXB_NAMES:
        return true;
    }
    return false;
}

/* Block b checked whole (once): its CRC, its pages, its invariants. */
static bool whole(bp_six *x, unsigned b) {
    if (b >= BP_SIXB_NBLOCKS) return false;
    uint32_t bit = 1u << b;
    if (__atomic_load_n(&x->checked, __ATOMIC_ACQUIRE) & bit) return true;
    if (__atomic_load_n(&x->bad, __ATOMIC_ACQUIRE) & bit) return false;
    bool ok = check_block(x, b);
    __atomic_fetch_or(ok ? &x->checked : &x->bad, bit, __ATOMIC_RELEASE);
    return ok;
}

bool bp_six_check_block(bp_six *x, unsigned b) {
    return whole(x, b);
}

bool bp_six_need(bp_six *x, unsigned b) {
    if (b >= BP_SIXB_NBLOCKS || !pages_table(x)) return false;
    return !(__atomic_load_n(&x->bad, __ATOMIC_ACQUIRE) & (1u << b));
}

void bp_six_reseal(uint8_t *p, size_t n) {
    bp_six x;
    memset(&x, 0, sizeof x);
    if (n < BP_SIX_HEADER) return;
    uint64_t pages = 0; /* of the blocks before PAGES */
    bool in = true;
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        x.off[k] = bp_get_be32(p + 136 + 12 * k);
        x.len[k] = bp_get_be32(p + 140 + 12 * k);
        in = in && (uint64_t)x.off[k] + x.len[k] <= n;
        x.page0[k] = (uint32_t)pages;
        if (k < BP_SIXB_PAGES) pages += ((uint64_t)x.len[k] + BP_SIX_PAGE - 1) / BP_SIX_PAGE;
    }
    if (in && x.len[BP_SIXB_PAGES] == 4 * pages)
        for (unsigned k = 0; k < BP_SIXB_PAGES; k++)
            for (uint64_t j = 0; j * BP_SIX_PAGE < x.len[k]; j++) {
                uint64_t len = x.len[k] - j * BP_SIX_PAGE;
                bp_put_be32(p + x.off[BP_SIXB_PAGES] + 4 * ((uint64_t)x.page0[k] + j),
                            bp_crc32(p + x.off[k] + j * BP_SIX_PAGE,
                                     (size_t)(len > BP_SIX_PAGE ? BP_SIX_PAGE : len)));
            }
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++)
        if ((uint64_t)x.off[k] + x.len[k] <= n)
            bp_put_be32(p + 144 + 12 * k, bp_crc32(p + x.off[k], x.len[k]));
    bp_put_be32(p + BP_SIX_HEADER - 4, bp_crc32(p, BP_SIX_HEADER - 4));
}

bp_status bp_six_check_all(bp_six *x, const char *path) {
    static const char *const names[BP_SIXB_NBLOCKS] = {
        "records",          "ids",   "seqs", "entities", "postings", "scopes", "kinds",
        "idempotency keys", "names", "pages"};
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++)
        if (!whole(x, k))
            return bp_err(BP_ECORRUPT, "%s: block %u (%s) at offset %u: CRC or bounds check failed",
                          path, k, names[k], x->off[k]);
    return BP_OK;
}

/* ---------------------------------------------------------------- lookups */

static uint64_t rec_seq(bp_six *x, uint32_t i) {
    if (!(x->flags & BP_SIX_HOLES)) return x->first_seq + i;
    uint32_t d = bp_get_be32(at(x, BP_SIXB_SEQS, 4 * (uint64_t)i, 4));
    if (d > x->last_seq - x->first_seq) fail(x, BP_SIXB_SEQS);
    return x->first_seq + d;
}

uint64_t bp_six_seq(bp_six *x, uint32_t i) {
    return rec_seq(x, i);
}

void bp_six_rec_get(bp_six *x, uint32_t i, bp_six_rec *out) {
    memset(out, 0, sizeof *out);
    if (i >= x->n_recs) {
        fail(x, BP_SIXB_RECS);
        return;
    }
    const uint8_t *r = at(x, BP_SIXB_RECS, (uint64_t)i * BP_SIX_REC_SIZE, BP_SIX_REC_SIZE);
    uint64_t o = bp_get_be32(r);
    uint64_t next = i + 1 < x->n_recs
                        ? bp_get_be32(at(x, BP_SIXB_RECS, (uint64_t)(i + 1) * BP_SIX_REC_SIZE, 4))
                        : x->pair.frames_end;
    uint32_t e = bp_get_be32(r + 4), s = bp_get_be16(r + 8);
    /* the bounds a reader relies on: a frame within the segment, names within the tables */
    if (o < BP_SEG_HEADER_SIZE || next <= o + BP_FRAME_PREFIX ||
        next - o > BP_FRAME_PREFIX + BP_FRAME_MAX_BODY || next > x->pair.frames_end ||
        e >= x->n_ents || s >= x->n_scopes) {
        fail(x, BP_SIXB_RECS);
        return;
    }
    out->seq = rec_seq(x, i);
    out->offset = (uint32_t)o;
    out->frame_len = (uint32_t)(next - o);
    out->entity = e;
    out->scope = s;
    out->kind = bp_get_be16(r + 10);
}

int64_t bp_six_find_seq(bp_six *x, uint64_t seq) {
    if (seq < x->first_seq || seq > x->last_seq) return -1;
    if (!(x->flags & BP_SIX_HOLES)) return (int64_t)(seq - x->first_seq);
    uint32_t lo = 0, hi = x->n_recs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rec_seq(x, mid) < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n_recs && rec_seq(x, lo) == seq ? (int64_t)lo : -1;
}

int64_t bp_six_find_id(bp_six *x, const bp_id *id) {
    if (memcmp(id->b, x->min_id.b, 16) < 0 || memcmp(id->b, x->max_id.b, 16) > 0) return -1;
    size_t stride = (x->flags & BP_SIX_IDS_IN_ORDER) ? 16 : 20;
    uint32_t lo = 0, hi = x->n_recs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (memcmp(at(x, BP_SIXB_IDS, stride * mid, 16), id->b, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == x->n_recs || memcmp(at(x, BP_SIXB_IDS, stride * lo, 16), id->b, 16) != 0) return -1;
    if (stride == 16) return (int64_t)lo;
    uint32_t r = bp_get_be32(at(x, BP_SIXB_IDS, stride * lo + 16, 4));
    if (r >= x->n_recs) {
        fail(x, BP_SIXB_IDS);
        return -1;
    }
    return (int64_t)r;
}

void bp_six_id(bp_six *x, uint32_t i, bp_id *out) {
    memset(out->b, 0, 16);
    if (i >= x->n_recs) {
        fail(x, BP_SIXB_IDS);
        return;
    }
    if (x->flags & BP_SIX_IDS_IN_ORDER) {
        memcpy(out->b, at(x, BP_SIXB_IDS, 16 * (uint64_t)i, 16), 16);
        return;
    }
    /* rare (a segment of imported events out of id order): a scan for the record */
    for (uint32_t k = 0; k < x->n_recs; k++) {
        const uint8_t *e = at(x, BP_SIXB_IDS, 20 * (uint64_t)k, 20);
        if (bp_get_be32(e + 16) == i) {
            memcpy(out->b, e, 16);
            return;
        }
    }
}

/* Name (name_off u32 | len u16) of the table entry at r, within NAMES, 1.. bytes: its bytes,
 * or NULL (block b marked). */
static const char *name_at(bp_six *x, unsigned b, const uint8_t *r, uint16_t *len) {
    *len = bp_get_be16(r + 4);
    if (!*len) {
        fail(x, b);
        return NULL;
    }
    const uint8_t *q = at(x, BP_SIXB_NAMES, bp_get_be32(r), *len);
    return q == ZEROS ? NULL : (const char *)q; /* (failed: NAMES marked) */
}

void bp_six_ent_get(bp_six *x, uint32_t e, bp_six_ent *out) {
    memset(out, 0, sizeof *out);
    out->name = "";
    if (e >= x->n_ents) {
        fail(x, BP_SIXB_ENTS);
        return;
    }
    const uint8_t *r = at(x, BP_SIXB_ENTS, (uint64_t)e * BP_SIX_ENT_SIZE, BP_SIX_ENT_SIZE);
    uint16_t len;
    const char *name = name_at(x, BP_SIXB_ENTS, r, &len);
    uint64_t clock = bp_get_be64(r + 8), count = bp_get_be32(r + 16), post = bp_get_be32(r + 20);
    if (!name || clock == 0 || count == 0 || clock + count < clock || post + count > x->n_recs) {
        fail(x, BP_SIXB_ENTS);
        return;
    }
    out->name = name;
    out->len = len;
    out->first_clock = clock;
    out->count = (uint32_t)count;
    out->post = (uint32_t)post;
}

/* Binary search of a sorted name table (block b, n entries of stride bytes): the first entry
 * not below name. */
static uint32_t name_lower(bp_six *x, unsigned b, uint32_t n, size_t stride, const char *name,
                           size_t len) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint16_t ml;
        const char *m = name_at(x, b, at(x, b, stride * mid, 6), &ml);
        if (m && bp_six_name_cmp(m, ml, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The entry of a sorted name table named exactly so, or -1; *at (may be NULL) the first
 * entry not below the name. */
static int64_t name_find(bp_six *x, unsigned b, uint32_t n, size_t stride, const char *name,
                         size_t len, uint32_t *where) {
    uint32_t lo = name_lower(x, b, n, stride, name, len);
    if (where) *where = lo;
    if (lo == n) return -1;
    uint16_t ml;
    const char *m = name_at(x, b, at(x, b, stride * lo, 6), &ml);
    return m && ml == len && memcmp(m, name, len) == 0 ? (int64_t)lo : -1;
}

int64_t bp_six_find_ent(bp_six *x, const char *name, size_t len, uint32_t *where) {
    return name_find(x, BP_SIXB_ENTS, x->n_ents, BP_SIX_ENT_SIZE, name, len, where);
}

uint32_t bp_six_post(bp_six *x, uint32_t k) {
    uint32_t r = k < x->n_recs ? bp_get_be32(at(x, BP_SIXB_POST, 4 * (uint64_t)k, 4)) : UINT32_MAX;
    if (r >= x->n_recs) {
        fail(x, BP_SIXB_POST);
        return 0;
    }
    return r;
}

void bp_six_prefetch_rec(const bp_six *x, uint32_t i) {
    if (i >= x->n_recs) return;
    size_t stride = (x->flags & BP_SIX_IDS_IN_ORDER) ? 16 : 20;
    if ((uint64_t)(i + 1) * BP_SIX_REC_SIZE <= x->len[BP_SIXB_RECS])
        __builtin_prefetch(BLK(x, BP_SIXB_RECS) + (size_t)i * BP_SIX_REC_SIZE);
    if ((uint64_t)(i + 1) * stride <= x->len[BP_SIXB_IDS])
        __builtin_prefetch(BLK(x, BP_SIXB_IDS) + (size_t)i * stride);
}

void bp_six_scope_get(bp_six *x, uint32_t s, const char **name, uint16_t *len, uint32_t *count) {
    *name = "";
    *len = 0;
    *count = 0;
    if (s >= x->n_scopes) {
        fail(x, BP_SIXB_SCOPES);
        return;
    }
    const uint8_t *r = at(x, BP_SIXB_SCOPES, (uint64_t)s * BP_SIX_SCOPE_SIZE, BP_SIX_SCOPE_SIZE);
    const char *nm = name_at(x, BP_SIXB_SCOPES, r, len);
    if (!nm) {
        *len = 0;
        return;
    }
    *name = nm;
    *count = bp_get_be32(r + 8);
}

int64_t bp_six_find_scope(bp_six *x, const char *name, size_t len) {
    return name_find(x, BP_SIXB_SCOPES, x->n_scopes, BP_SIX_SCOPE_SIZE, name, len, NULL);
}

/* The KINDS entry of kind, or n_kinds. */
static uint32_t kind_find(bp_six *x, uint16_t kind) {
    uint32_t lo = 0, hi = x->n_kinds;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bp_get_be16(at(x, BP_SIXB_KINDS, 8 * (uint64_t)mid, 2)) < kind)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n_kinds && bp_get_be16(at(x, BP_SIXB_KINDS, 8 * (uint64_t)lo, 2)) == kind
               ? lo
               : x->n_kinds;
}

int64_t bp_six_find_kind(bp_six *x, uint16_t kind) {
    uint32_t k = kind_find(x, kind);
    return k < x->n_kinds ? (int64_t)k : -1;
}

void bp_six_kind_get(bp_six *x, uint32_t i, uint16_t *kind, uint32_t *count) {
    *kind = 0;
    *count = 0;
    if (i >= x->n_kinds) {
        fail(x, BP_SIXB_KINDS);
        return;
    }
    const uint8_t *p = at(x, BP_SIXB_KINDS, 8 * (uint64_t)i, 8);
    *kind = bp_get_be16(p);
    *count = bp_get_be32(p + 4);
}

uint32_t bp_six_kind_count(bp_six *x, uint16_t kind) {
    uint32_t k = kind_find(x, kind);
    return k < x->n_kinds ? bp_get_be32(at(x, BP_SIXB_KINDS, 8 * (uint64_t)k + 4, 4)) : 0;
}

void bp_six_idem_range(bp_six *x, uint64_t hash, uint32_t *lo_out, uint32_t *hi_out) {
    uint32_t lo = 0, hi = x->n_idems;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bp_get_be64(at(x, BP_SIXB_IDEM, 12 * (uint64_t)mid, 8)) < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t end = lo;
    while (end < x->n_idems && bp_get_be64(at(x, BP_SIXB_IDEM, 12 * (uint64_t)end, 8)) == hash)
        end++;
    *lo_out = lo;
    *hi_out = end;
}

uint32_t bp_six_idem_rec(bp_six *x, uint32_t k) {
    uint32_t r =
        k < x->n_idems ? bp_get_be32(at(x, BP_SIXB_IDEM, 12 * (uint64_t)k + 8, 4)) : UINT32_MAX;
    if (r >= x->n_recs) {
        fail(x, BP_SIXB_IDEM);
        return 0;
    }
    return r;
}
