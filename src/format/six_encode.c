/* Segment index files: the encoder (six.h, doc/FORMAT.md "Segment index files"). */
#include "format/six.h"

#include <errno.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- encoder */

/* qsort has no context argument in C11: the names being sorted, per thread. */
static _Thread_local const bp_iname *sort_names;
static int by_name(const void *a, const void *b) {
    const bp_iname *x = &sort_names[*(const uint32_t *)a], *y = &sort_names[*(const uint32_t *)b];
    return bp_six_name_cmp(x->name, x->len, y->name, y->len);
}

typedef struct idpair {
    bp_id id;
    uint32_t rec;
} idpair;
static int by_id(const void *a, const void *b) {
    const idpair *x = a, *y = b;
    int c = memcmp(x->id.b, y->id.b, 16);
    return c ? c : (x->rec > y->rec) - (x->rec < y->rec);
}
typedef struct hpair {
    uint64_t h;
    uint32_t rec;
} hpair;
static int by_hash(const void *a, const void *b) {
    const hpair *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}
/* Sort the names [0, n) into order[] and give each its rank (rank[name] = position);
 * -EINVAL when two are equal or one is empty or too long. */
static int rank_names(const bp_iname *names, uint32_t n, uint32_t *order, uint32_t *rank) {
    for (uint32_t i = 0; i < n; i++) {
        if (names[i].len == 0) return -EINVAL;
        order[i] = i;
    }
    sort_names = names;
    qsort(order, n, sizeof *order, by_name);
    for (uint32_t i = 0; i < n; i++) {
        rank[order[i]] = i;
        if (i && by_name(&order[i - 1], &order[i]) == 0) return -EINVAL;
    }
    return 0;
}

/* What the encoder works out from a block before it writes: the names in order (order[k] is
 * the block's number of the name of rank k, rank[] the inverse), per entity (by rank) its
 * count, first posting and first clock, the postings, the kinds' counts, the (id, record)
 * pairs when the ids are not in order, the (hash, record) pairs, and the blocks' places. */
typedef struct six_enc {
    const bp_iblock *blk;
    uint32_t n, ne, ns, nk;
    uint32_t *eorder, *erank, *sorder, *srank;
    uint32_t *ecount, *epos, *scount, *post;
    uint64_t *fclock;
    uint32_t *kinds; /* records per kind (65536 counters) */
    idpair *ids;
    hpair *idem;
    bool in_order;
    uint64_t min_hlc, max_hlc;
    uint32_t off[BP_SIXB_NBLOCKS], len[BP_SIXB_NBLOCKS];
} six_enc;

/* A record's entity and scope in the block's numbering (see emap/smap in format.h). */
#define REC_E(e, r) ((e)->blk->emap ? (e)->blk->emap[(r)->entity] : (r)->entity)
#define REC_S(e, r) ((e)->blk->smap ? (e)->blk->smap[(r)->scope] : (r)->scope)

static void enc_free(six_enc *e) {
    free(e->eorder);
    free(e->erank);
    free(e->sorder);
    free(e->srank);
    free(e->ecount);
    free(e->epos);
    free(e->scount);
    free(e->post);
    free(e->fclock);
    free(e->kinds);
    free(e->ids);
    free(e->idem);
}

/* -EINVAL when the block's records, seqs, frames or keys do not describe a segment to index:
 * what bp_six_open and bp_six_need would refuse in the file. */
static int enc_check(const bp_iblock *blk, const bp_six_pair *pair) {
    uint32_t n = blk->n_recs;
    if (n == 0 || blk->n_entities == 0 || blk->n_scopes == 0 || blk->n_scopes > 65535 ||
        pair->frames_end > BP_SEG_END_MAX || pair->frames_end > pair->seg_size)
        return -EINVAL;
    /* frames contiguous from the header on, ending at frames_end, each a frame's size */
    if (blk->recs[0].offset < BP_SEG_HEADER_SIZE) return -EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t end = (uint64_t)blk->recs[i].offset + blk->recs[i].frame_len;
        uint64_t next = i + 1 < n ? blk->recs[i + 1].offset : pair->frames_end;
        if (blk->recs[i].frame_len <= BP_FRAME_PREFIX ||
            blk->recs[i].frame_len > BP_FRAME_PREFIX + BP_FRAME_MAX_BODY || end != next)
            return -EINVAL;
    }
    /* seqs from first_seq >= 1: dense, or strictly ascending within 2^32 of the first */
    if (blk->first_seq == 0 || blk->first_seq + (n - 1) < blk->first_seq) return -EINVAL;
    if (blk->seqs) {
        if (blk->seqs[0] != blk->first_seq || blk->seqs[n - 1] - blk->seqs[0] > UINT32_MAX)
            return -EINVAL;
        for (uint32_t i = 1; i < n; i++)
            if (blk->seqs[i] <= blk->seqs[i - 1]) return -EINVAL;
    }
    for (uint32_t k = 0; k < blk->n_idems; k++)
        if (blk->idems[k].rec >= n) return -EINVAL;
    return 0;
}

/* Entities and scopes ranked, counted and posted; kinds counted; the clocks, the ids' order
 * and the hlc range. 0, -ENOMEM, -EINVAL. */
static int enc_names(six_enc *e, const uint64_t *first_clock) {
    const bp_iblock *blk = e->blk;
    uint32_t n = e->n, ne = e->ne, ns = e->ns;
    e->eorder = malloc(sizeof(uint32_t) * ne);
    e->erank = malloc(sizeof(uint32_t) * ne);
    e->sorder = malloc(sizeof(uint32_t) * ns);
    e->srank = malloc(sizeof(uint32_t) * ns);
    e->ecount = calloc(ne, sizeof(uint32_t));
    e->epos = malloc(sizeof(uint32_t) * ne);
    e->scount = calloc(ns, sizeof(uint32_t));
    e->post = malloc(sizeof(uint32_t) * n);
    e->fclock = malloc(sizeof(uint64_t) * ne);
    e->kinds = calloc(65536, sizeof(uint32_t));
    uint32_t *fill = malloc(sizeof(uint32_t) * ne); /* next free posting of each entity */
    int rc = -ENOMEM;
    if (!e->eorder || !e->erank || !e->sorder || !e->srank || !e->ecount || !e->epos ||
        !e->scount || !e->post || !e->fclock || !e->kinds || !fill)
        goto out;
    rc = -EINVAL;
    if (rank_names(blk->entities, ne, e->eorder, e->erank) ||
        rank_names(blk->scopes, ns, e->sorder, e->srank))
        goto out;
    e->in_order = true;
    e->min_hlc = UINT64_MAX;
    e->max_hlc = 0;
    for (uint32_t i = 0; i < n; i++) {
        const bp_irec *r = &blk->recs[i];
        if (REC_E(e, r) >= ne || REC_S(e, r) >= ns) goto out;
        e->ecount[e->erank[REC_E(e, r)]]++;
        e->scount[e->srank[REC_S(e, r)]]++;
        e->kinds[r->kind]++;
        if (i && memcmp(blk->recs[i - 1].id.b, r->id.b, 16) >= 0) e->in_order = false;
        if (r->hlc < e->min_hlc) e->min_hlc = r->hlc;
        if (r->hlc > e->max_hlc) e->max_hlc = r->hlc;
    }
    for (uint32_t k = 0; k < ne; k++) {
        if (e->ecount[k] == 0) goto out; /* a block names no entity it has no record of */
        e->epos[k] = k ? e->epos[k - 1] + e->ecount[k - 1] : 0;
        fill[k] = e->epos[k];
    }
    for (uint32_t k = 0; k < ns; k++)
        if (e->scount[k] == 0) goto out; /* nor a scope */
    for (uint32_t k = 0; k < ne; k++) {
        uint64_t c = first_clock[k], count = e->ecount[e->erank[k]];
        if (c == 0 || c + count < c) goto out; /* clocks from 1, c .. c + count - 1 */
        e->fclock[e->erank[k]] = c;
    }
    for (uint32_t i = 0; i < n; i++)
        e->post[fill[e->erank[REC_E(e, &blk->recs[i])]]++] = i;
    e->nk = 0;
    for (uint32_t k = 0; k < 65536; k++)
        e->nk += e->kinds[k] != 0;
    rc = 0;
out:
    free(fill);
    return rc;
}

/* The (id, record) pairs when the ids are not in order, the (hash, record) pairs. */
static int enc_pairs(six_enc *e) {
    const bp_iblock *blk = e->blk;
    if (!e->in_order) {
        e->ids = malloc(sizeof(idpair) * e->n);
        if (!e->ids) return -ENOMEM;
        for (uint32_t i = 0; i < e->n; i++)
            e->ids[i] = (idpair){blk->recs[i].id, i};
        qsort(e->ids, e->n, sizeof *e->ids, by_id);
    }
    if (blk->n_idems) {
        e->idem = malloc(sizeof(hpair) * blk->n_idems);
        if (!e->idem) return -ENOMEM;
        for (uint32_t k = 0; k < blk->n_idems; k++)
            e->idem[k] =
                (hpair){bp_six_key_hash(blk->idems[k].key, blk->idems[k].len), blk->idems[k].rec};
        qsort(e->idem, blk->n_idems, sizeof *e->idem, by_hash);
        for (uint32_t k = 1; k < blk->n_idems; k++) /* a key twice on a record */
            if (by_hash(&e->idem[k - 1], &e->idem[k]) == 0) return -EINVAL;
    }
    return 0;
}

/* Each block's length and offset; the file's size (in 64 bits: over UINT32_MAX, the offsets
 * are not set and the block cannot be indexed). */
static uint64_t enc_layout(six_enc *e) {
    const bp_iblock *blk = e->blk;
    uint64_t n = e->n, len[BP_SIXB_NBLOCKS];
    len[BP_SIXB_RECS] = n * BP_SIX_REC_SIZE;
    len[BP_SIXB_IDS] = n * (e->in_order ? 16u : 20u);
    len[BP_SIXB_SEQS] = blk->seqs ? n * 4u : 0;
    len[BP_SIXB_ENTS] = (uint64_t)e->ne * BP_SIX_ENT_SIZE;
    len[BP_SIXB_POST] = n * 4u;
    len[BP_SIXB_SCOPES] = (uint64_t)e->ns * BP_SIX_SCOPE_SIZE;
    len[BP_SIXB_KINDS] = (uint64_t)e->nk * BP_SIX_KIND_SIZE;
    len[BP_SIXB_IDEM] = (uint64_t)blk->n_idems * BP_SIX_IDEM_SIZE;
    len[BP_SIXB_NAMES] = 0;
    for (uint32_t k = 0; k < e->ne; k++)
        len[BP_SIXB_NAMES] += blk->entities[k].len;
    for (uint32_t s = 0; s < e->ns; s++)
        len[BP_SIXB_NAMES] += blk->scopes[s].len;
    len[BP_SIXB_PAGES] = 0; /* a CRC per page of the others */
    for (unsigned k = 0; k < BP_SIXB_PAGES; k++)
        len[BP_SIXB_PAGES] += 4 * ((len[k] + BP_SIX_PAGE - 1) / BP_SIX_PAGE);
    uint64_t total = BP_SIX_HEADER;
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++)
        total += len[k];
    if (total > UINT32_MAX) return total;
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        e->len[k] = (uint32_t)len[k];
        e->off[k] = k ? e->off[k - 1] + e->len[k - 1] : BP_SIX_HEADER;
    }
    return total;
}

/* RECS, IDS, SEQS and POST. */
static void enc_records(const six_enc *e, uint8_t *h) {
    const bp_iblock *blk = e->blk;
    uint8_t *p = h + e->off[BP_SIXB_RECS];
    for (uint32_t i = 0; i < e->n; i++, p += BP_SIX_REC_SIZE) {
        const bp_irec *r = &blk->recs[i];
        bp_put_be32(p, r->offset);
        bp_put_be32(p + 4, e->erank[REC_E(e, r)]);
        bp_put_be16(p + 8, (uint16_t)e->srank[REC_S(e, r)]);
        bp_put_be16(p + 10, r->kind);
    }
    p = h + e->off[BP_SIXB_IDS];
    for (uint32_t i = 0; i < e->n; i++) {
        if (e->in_order) {
            memcpy(p, blk->recs[i].id.b, 16);
            p += 16;
        } else {
            memcpy(p, e->ids[i].id.b, 16);
            bp_put_be32(p + 16, e->ids[i].rec);
            p += 20;
        }
    }
    p = h + e->off[BP_SIXB_SEQS];
    if (blk->seqs)
        for (uint32_t i = 0; i < e->n; i++, p += 4)
            bp_put_be32(p, (uint32_t)(blk->seqs[i] - blk->seqs[0]));
    p = h + e->off[BP_SIXB_POST];
    for (uint32_t i = 0; i < e->n; i++, p += 4)
        bp_put_be32(p, e->post[i]);
}

/* ENTS, SCOPES and their NAMES, KINDS, IDEM. */
static void enc_tables(const six_enc *e, uint8_t *h) {
    const bp_iblock *blk = e->blk;
    uint32_t name_off = 0;
    uint8_t *nm = h + e->off[BP_SIXB_NAMES];
    uint8_t *p = h + e->off[BP_SIXB_ENTS];
    for (uint32_t k = 0; k < e->ne; k++, p += BP_SIX_ENT_SIZE) {
        const bp_iname *en = &blk->entities[e->eorder[k]];
        bp_put_be32(p, name_off);
        bp_put_be16(p + 4, en->len);
        bp_put_be64(p + 8, e->fclock[k]);
        bp_put_be32(p + 16, e->ecount[k]);
        bp_put_be32(p + 20, e->epos[k]);
        memcpy(nm + name_off, en->name, en->len);
        name_off += en->len;
    }
    p = h + e->off[BP_SIXB_SCOPES];
    for (uint32_t k = 0; k < e->ns; k++, p += BP_SIX_SCOPE_SIZE) {
        const bp_iname *sn = &blk->scopes[e->sorder[k]];
        bp_put_be32(p, name_off);
        bp_put_be16(p + 4, sn->len);
        bp_put_be32(p + 8, e->scount[k]);
        memcpy(nm + name_off, sn->name, sn->len);
        name_off += sn->len;
    }
    p = h + e->off[BP_SIXB_KINDS];
    for (uint32_t k = 0; k < 65536; k++)
        if (e->kinds[k]) {
            bp_put_be16(p, (uint16_t)k);
            bp_put_be32(p + 4, e->kinds[k]);
            p += BP_SIX_KIND_SIZE;
        }
    p = h + e->off[BP_SIXB_IDEM];
    for (uint32_t k = 0; k < blk->n_idems; k++, p += BP_SIX_IDEM_SIZE) {
        bp_put_be64(p, e->idem[k].h);
        bp_put_be32(p + 8, e->idem[k].rec);
    }
}

static void enc_header(const six_enc *e, uint8_t *h, const bp_six_pair *pair) {
    const bp_iblock *blk = e->blk;
    uint32_t n = e->n;
    memcpy(h, "BPIX", 4);
    bp_put_be16(h + 4, BP_SIX_VERSION);
    bp_put_be16(h + 6, BP_SIX_HEADER);
    bp_put_be32(h + 8, pair->segno);
    bool sealed = false; /* (the frame flag of a sealed payload: BP_EVENT_SEALED) */
    for (uint32_t i = 0; i < blk->n_recs && !sealed; i++)
        sealed = (blk->recs[i].flags & 0x0100) != 0;
    bp_put_be32(h + 12, (e->in_order ? BP_SIX_IDS_IN_ORDER : 0) | (blk->seqs ? BP_SIX_HOLES : 0) |
                            (sealed ? BP_SIX_SEALED : 0));
    memcpy(h + 16, pair->uuid, 16);
    bp_put_be64(h + 32, blk->first_seq);
    bp_put_be64(h + 40, blk->seqs ? blk->seqs[n - 1] : blk->first_seq + n - 1);
    bp_put_be32(h + 48, n);
    bp_put_be32(h + 52, e->ne);
    bp_put_be32(h + 56, e->ns);
    bp_put_be32(h + 60, e->nk);
    bp_put_be32(h + 64, blk->n_idems);
    bp_put_be32(h + 68, pair->footer_crc);
    bp_put_be64(h + 72, pair->seg_size);
    bp_put_be64(h + 80, pair->frames_end);
    bp_put_be64(h + 88, e->min_hlc);
    bp_put_be64(h + 96, e->max_hlc);
    const bp_id *lo = e->in_order ? &blk->recs[0].id : &e->ids[0].id;
    const bp_id *hi = e->in_order ? &blk->recs[n - 1].id : &e->ids[n - 1].id;
    memcpy(h + 104, lo->b, 16);
    memcpy(h + 120, hi->b, 16);
    for (unsigned k = 0; k < BP_SIXB_NBLOCKS; k++) {
        bp_put_be32(h + 136 + 12 * k, e->off[k]);
        bp_put_be32(h + 140 + 12 * k, e->len[k]);
    }
}
#undef REC_E
#undef REC_S

int bp_six_encode(bp_buf *b, const bp_iblock *blk, const uint64_t *first_clock,
                  const bp_six_pair *pair) {
    int rc = enc_check(blk, pair);
    if (rc) return rc;
    six_enc e = {.blk = blk, .n = blk->n_recs, .ne = blk->n_entities, .ns = blk->n_scopes};
    if (!(rc = enc_names(&e, first_clock)) && !(rc = enc_pairs(&e))) {
        uint64_t total = enc_layout(&e);
        if (total > UINT32_MAX)
            rc = -EINVAL;
        else if (bp_buf_reserve(b, (size_t)total))
            rc = -ENOMEM;
        else {
            uint8_t *h = b->data + b->len;
            memset(h, 0, (size_t)total);
            enc_records(&e, h);
            enc_tables(&e, h);
            enc_header(&e, h, pair);
            bp_six_reseal(h, (size_t)total); /* PAGES, the blocks' CRCs, the header's */
            b->len += (size_t)total;
        }
    }
    enc_free(&e);
    return rc;
}
