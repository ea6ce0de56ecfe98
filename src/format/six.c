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
    if (!bp_crc_tail_ok(p, BP_SIX_HEADER))
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
    };
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        x->off[k] = bp_get_be32(p + 136 + 12 * k);
        x->len[k] = bp_get_be32(p + 140 + 12 * k);
        x->crc[k] = bp_get_be32(p + 144 + 12 * k);
        bool size_ok = k == BP_SIXB_NAMES ? x->len[k] >= 1 : x->len[k] == want[k];
        if (!size_ok || x->off[k] < BP_SIX_HEADER || (uint64_t)x->off[k] + x->len[k] > n)
            return bp_err(BP_ECORRUPT, "%s: header: block %u out of bounds (offset %u, %u bytes)",
                          path, k, x->off[k], x->len[k]);
    }
    return BP_OK;
}

#define BLK(x, k) ((x)->p + (x)->off[k])

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
    if (!bp_six_need(x, BP_SIXB_ENTS) || !bp_six_need(x, BP_SIXB_RECS)) return false;
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
    if (!bp_six_need(x, BP_SIXB_RECS)) return false;
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
static uint32_t kind_find(const uint8_t *p, uint32_t nk, uint16_t kind) {
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
    if (!bp_six_need(x, BP_SIXB_RECS)) return false;
    uint32_t *tally = calloc(nk, sizeof *tally);
    if (!tally) return false;
    const uint8_t *recs = BLK(x, BP_SIXB_RECS);
    bool ok = true;
    for (uint32_t i = 0; i < x->n_recs && ok; i++) {
        uint32_t k = kind_find(p, nk, bp_get_be16(recs + (size_t)i * BP_SIX_REC_SIZE + 10));
        ok = k < nk;
        if (ok) tally[k]++;
    }
    for (uint32_t k = 0; k < nk && ok; k++)
        ok = tally[k] && bp_get_be32(p + 8 * (size_t)k + 4) == tally[k];
    free(tally);
    return ok;
}

static bool check_block(bp_six *x, unsigned k) {
    const uint8_t *p = BLK(x, k);
    uint32_t n = x->n_recs;
    if (bp_crc32(p, x->len[k]) != x->crc[k]) return false;
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
        if (!bp_six_need(x, BP_SIXB_NAMES) || !names_ok(x, p, x->n_ents, BP_SIX_ENT_SIZE))
            return false;
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
        return bp_six_need(x, BP_SIXB_NAMES) && names_ok(x, p, x->n_scopes, BP_SIX_SCOPE_SIZE) &&
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

bool bp_six_need(bp_six *x, unsigned b) {
    if (b >= BP_SIXB_NBLOCKS) return false;
    uint32_t bit = 1u << b;
    if (__atomic_load_n(&x->checked, __ATOMIC_ACQUIRE) & bit) return true;
    if (__atomic_load_n(&x->bad, __ATOMIC_ACQUIRE) & bit) return false;
    bool ok = check_block(x, b);
    __atomic_fetch_or(ok ? &x->checked : &x->bad, bit, __ATOMIC_RELEASE);
    return ok;
}

bp_status bp_six_check_all(bp_six *x, const char *path) {
    static const char *const names[BP_SIXB_NBLOCKS] = {
        "records",          "ids",  "seqs", "entities", "postings", "scopes", "kinds",
        "idempotency keys", "names"};
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++)
        if (!bp_six_need(x, k))
            return bp_err(BP_ECORRUPT, "%s: block %u (%s) at offset %u: CRC or bounds check failed",
                          path, k, names[k], x->off[k]);
    return BP_OK;
}

/* ---------------------------------------------------------------- lookups */

static uint64_t rec_seq(const bp_six *x, uint32_t i) {
    if (!(x->flags & BP_SIX_HOLES)) return x->first_seq + i;
    return x->first_seq + bp_get_be32(BLK(x, BP_SIXB_SEQS) + 4 * (size_t)i);
}

uint64_t bp_six_seq(const bp_six *x, uint32_t i) {
    return rec_seq(x, i);
}

void bp_six_rec_get(const bp_six *x, uint32_t i, bp_six_rec *out) {
    const uint8_t *r = BLK(x, BP_SIXB_RECS) + (size_t)i * BP_SIX_REC_SIZE;
    uint32_t next =
        i + 1 < x->n_recs ? bp_get_be32(r + BP_SIX_REC_SIZE) : (uint32_t)x->pair.frames_end;
    out->seq = rec_seq(x, i);
    out->offset = bp_get_be32(r);
    out->frame_len = next - out->offset;
    out->entity = bp_get_be32(r + 4);
    out->scope = bp_get_be16(r + 8);
    out->kind = bp_get_be16(r + 10);
}

int64_t bp_six_find_seq(const bp_six *x, uint64_t seq) {
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

int64_t bp_six_find_id(const bp_six *x, const bp_id *id) {
    if (memcmp(id->b, x->min_id.b, 16) < 0 || memcmp(id->b, x->max_id.b, 16) > 0) return -1;
    size_t stride = (x->flags & BP_SIX_IDS_IN_ORDER) ? 16 : 20;
    const uint8_t *p = BLK(x, BP_SIXB_IDS);
    uint32_t lo = 0, hi = x->n_recs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (memcmp(p + stride * mid, id->b, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == x->n_recs || memcmp(p + stride * lo, id->b, 16) != 0) return -1;
    return stride == 16 ? (int64_t)lo : (int64_t)bp_get_be32(p + stride * lo + 16);
}

void bp_six_id(const bp_six *x, uint32_t i, bp_id *out) {
    const uint8_t *p = BLK(x, BP_SIXB_IDS);
    if (x->flags & BP_SIX_IDS_IN_ORDER) {
        memcpy(out->b, p + 16 * (size_t)i, 16);
        return;
    }
    /* rare (a segment of imported events out of id order): a scan for the record */
    for (uint32_t k = 0; k < x->n_recs; k++)
        if (bp_get_be32(p + 20 * (size_t)k + 16) == i) {
            memcpy(out->b, p + 20 * (size_t)k, 16);
            return;
        }
    memset(out->b, 0, 16);
}

void bp_six_ent_get(const bp_six *x, uint32_t e, bp_six_ent *out) {
    const uint8_t *r = BLK(x, BP_SIXB_ENTS) + (size_t)e * BP_SIX_ENT_SIZE;
    out->name = (const char *)BLK(x, BP_SIXB_NAMES) + bp_get_be32(r);
    out->len = bp_get_be16(r + 4);
    out->first_clock = bp_get_be64(r + 8);
    out->count = bp_get_be32(r + 16);
    out->post = bp_get_be32(r + 20);
}

/* Binary search of a sorted name table: the first entry not below name. */
static uint32_t name_lower(const bp_six *x, const uint8_t *tab, uint32_t n, size_t stride,
                           const char *name, size_t len) {
    const char *nm = (const char *)BLK(x, BP_SIXB_NAMES);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *r = tab + stride * mid;
        if (bp_six_name_cmp(nm + bp_get_be32(r), bp_get_be16(r + 4), name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The entry of a sorted name table named exactly so, or -1; *at (may be NULL) the first
 * entry not below the name. */
static int64_t name_find(const bp_six *x, const uint8_t *tab, uint32_t n, size_t stride,
                         const char *name, size_t len, uint32_t *at) {
    uint32_t lo = name_lower(x, tab, n, stride, name, len);
    if (at) *at = lo;
    if (lo == n) return -1;
    const uint8_t *r = tab + (size_t)lo * stride;
    if (bp_get_be16(r + 4) != len || memcmp(BLK(x, BP_SIXB_NAMES) + bp_get_be32(r), name, len) != 0)
        return -1;
    return lo;
}

int64_t bp_six_find_ent(const bp_six *x, const char *name, size_t len, uint32_t *at) {
    return name_find(x, BLK(x, BP_SIXB_ENTS), x->n_ents, BP_SIX_ENT_SIZE, name, len, at);
}

uint32_t bp_six_post(const bp_six *x, uint32_t k) {
    return bp_get_be32(BLK(x, BP_SIXB_POST) + 4 * (size_t)k);
}

void bp_six_scope_get(const bp_six *x, uint32_t s, const char **name, uint16_t *len,
                      uint32_t *count) {
    const uint8_t *r = BLK(x, BP_SIXB_SCOPES) + (size_t)s * BP_SIX_SCOPE_SIZE;
    *name = (const char *)BLK(x, BP_SIXB_NAMES) + bp_get_be32(r);
    *len = bp_get_be16(r + 4);
    *count = bp_get_be32(r + 8);
}

int64_t bp_six_find_scope(const bp_six *x, const char *name, size_t len) {
    return name_find(x, BLK(x, BP_SIXB_SCOPES), x->n_scopes, BP_SIX_SCOPE_SIZE, name, len, NULL);
}

int64_t bp_six_find_kind(const bp_six *x, uint16_t kind) {
    uint32_t k = kind_find(BLK(x, BP_SIXB_KINDS), x->n_kinds, kind);
    return k < x->n_kinds ? (int64_t)k : -1;
}

void bp_six_kind_get(const bp_six *x, uint32_t i, uint16_t *kind, uint32_t *count) {
    const uint8_t *p = BLK(x, BP_SIXB_KINDS) + 8 * (size_t)i;
    *kind = bp_get_be16(p);
    *count = bp_get_be32(p + 4);
}

uint32_t bp_six_kind_count(const bp_six *x, uint16_t kind) {
    const uint8_t *p = BLK(x, BP_SIXB_KINDS);
    uint32_t k = kind_find(p, x->n_kinds, kind);
    return k < x->n_kinds ? bp_get_be32(p + 8 * (size_t)k + 4) : 0;
}

void bp_six_idem_range(const bp_six *x, uint64_t hash, uint32_t *lo_out, uint32_t *hi_out) {
    const uint8_t *p = BLK(x, BP_SIXB_IDEM);
    uint32_t lo = 0, hi = x->n_idems;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bp_get_be64(p + 12 * (size_t)mid) < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t end = lo;
    while (end < x->n_idems && bp_get_be64(p + 12 * (size_t)end) == hash)
        end++;
    *lo_out = lo;
    *hi_out = end;
}

uint32_t bp_six_idem_rec(const bp_six *x, uint32_t k) {
    return bp_get_be32(BLK(x, BP_SIXB_IDEM) + 12 * (size_t)k + 8);
}
