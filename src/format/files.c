/* STORE identity file, segment header, index blocks, SIDX footers and the
 * index checkpoint (doc/FORMAT.md). */
#include "format/format.h"

#include <errno.h>
#include <stdlib.h>

static const uint8_t STORE_MAGIC[8] = {'B', 'P', 'S', 'T', 'O', 'R', 'E', 0};

void bp_store_ident_encode(const bp_store_ident *id, uint8_t out[BP_STORE_FILE_SIZE]) {
    memset(out, 0, BP_STORE_FILE_SIZE);
    memcpy(out, STORE_MAGIC, 8);
    bp_put_be32(out + 8, id->version);
    memcpy(out + 16, id->uuid, 16);
    bp_put_be64(out + 32, id->created_ms);
    bp_put_be32(out + 44, bp_crc32(out, 44));
}

bp_status bp_store_ident_decode(bp_store_ident *id, const uint8_t *p, size_t n, const char *path) {
    if (n < 12)
        return bp_err(BP_ECORRUPT, "%s: %zu bytes, expected %d (empty or cut short)", path, n,
                      BP_STORE_FILE_SIZE);
    if (memcmp(p, STORE_MAGIC, 8) != 0)
        return bp_err(BP_ECORRUPT, "%s: not a batpak STORE file (bad magic)", path);
    id->version = bp_get_be32(p + 8);
    if (id->version != BP_FORMAT_VERSION)
        return bp_err(BP_EVERSION,
                      "%s: store format version %u is not supported (this build reads version %u)",
                      path, id->version, BP_FORMAT_VERSION);
    if (n != BP_STORE_FILE_SIZE)
        return bp_err(BP_ECORRUPT, "%s: %zu bytes, expected %d", path, n, BP_STORE_FILE_SIZE);
    if (!bp_crc_tail_ok(p, BP_STORE_FILE_SIZE))
        return bp_err(BP_ECORRUPT, "%s: CRC mismatch", path);
    if (bp_get_be32(p + 12) != 0 || bp_get_be32(p + 40) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset %d: reserved bytes are not zero", path,
                      bp_get_be32(p + 12) ? 12 : 40);
    memcpy(id->uuid, p + 16, 16);
    id->created_ms = bp_get_be64(p + 32);
    return BP_OK;
}

void bp_seg_header_encode(const bp_seg_header *h, uint8_t out[BP_SEG_HEADER_SIZE]) {
    memset(out, 0, BP_SEG_HEADER_SIZE);
    memcpy(out, "FBAT", 4);
    bp_put_be16(out + 4, (uint16_t)h->version);
    bp_put_be16(out + 6, BP_SEG_HEADER_SIZE);
    bp_put_be32(out + 8, h->segno);
    memcpy(out + 16, h->uuid, 16);
    bp_put_be64(out + 32, h->created_ms);
    bp_put_be32(out + 44, bp_crc32(out, 44));
}

bp_status bp_seg_header_decode(bp_seg_header *h, const uint8_t *p, size_t n, const char *path) {
    if (n < 8 || memcmp(p, "FBAT", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 0: not a segment (bad magic)", path);
    h->version = bp_get_be16(p + 4);
    if (h->version != BP_FORMAT_VERSION)
        return bp_err(
            BP_EVERSION,
            "%s: segment format version %u is not supported (this build reads version %u)", path,
            h->version, BP_FORMAT_VERSION);
    if (n < BP_SEG_HEADER_SIZE)
        return bp_err(BP_ECORRUPT, "%s: offset 0: truncated segment header (%zu of %d bytes)", path,
                      n, BP_SEG_HEADER_SIZE);
    if (bp_get_be16(p + 6) != BP_SEG_HEADER_SIZE)
        return bp_err(BP_ECORRUPT, "%s: offset 6: segment header size field %u, expected %d", path,
                      bp_get_be16(p + 6), BP_SEG_HEADER_SIZE);
    if (!bp_crc_tail_ok(p, BP_SEG_HEADER_SIZE))
        return bp_err(BP_ECORRUPT, "%s: offset 0: segment header CRC mismatch", path);
    if (bp_get_be32(p + 12) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 12: segment header flags 0x%x, version 1 has none",
                      path, bp_get_be32(p + 12));
    if (bp_get_be32(p + 40) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 40: segment header reserved bytes are not zero",
                      path);
    h->segno = bp_get_be32(p + 8);
    memcpy(h->uuid, p + 16, 16);
    h->created_ms = bp_get_be64(p + 32);
    return BP_OK;
}

uint32_t bp_seg_header_flags(const uint8_t hdr[BP_SEG_HEADER_SIZE]) {
    return bp_get_be32(hdr + 12);
}

/* ---------------------------------------------------------- index block */

static int put32(bp_buf *b, uint32_t v) {
    uint8_t t[4];
    bp_put_be32(t, v);
    return bp_buf_append(b, t, 4);
}

static int put_name(bp_buf *b, const char *s, uint16_t len) {
    uint8_t t[2];
    bp_put_be16(t, len);
    return bp_buf_append(b, t, 2) || bp_buf_append(b, s, len) ? -ENOMEM : 0;
}

int bp_iblock_encode(bp_buf *b, const bp_iblock *blk) {
    uint8_t t[BP_IREC_SIZE];
    bp_put_be64(t, blk->first_seq);
    if (bp_buf_append(b, t, 8) || put32(b, blk->n_entities)) return -ENOMEM;
    for (uint32_t i = 0; i < blk->n_entities; i++)
        if (put_name(b, blk->entities[i].name, blk->entities[i].len) ||
            bp_buf_append(b, blk->entity_heads[i].b, 32))
            return -ENOMEM;
    if (put32(b, blk->n_scopes)) return -ENOMEM;
    for (uint32_t i = 0; i < blk->n_scopes; i++)
        if (put_name(b, blk->scopes[i].name, blk->scopes[i].len)) return -ENOMEM;
    if (put32(b, blk->n_recs) || bp_buf_reserve(b, (size_t)blk->n_recs * BP_IREC_SIZE))
        return -ENOMEM;
    for (uint32_t i = 0; i < blk->n_recs; i++) {
        const bp_irec *r = &blk->recs[i];
        uint8_t *p = b->data + b->len;
        memcpy(p, r->id.b, 16);
        bp_put_be64(p + 16, r->hlc);
        bp_put_be32(p + 24, r->segno);
        bp_put_be32(p + 28, r->offset);
        bp_put_be32(p + 32, r->frame_len);
        bp_put_be32(p + 36, blk->emap ? blk->emap[r->entity] : r->entity);
        bp_put_be32(p + 40, blk->smap ? blk->smap[r->scope] : r->scope);
        bp_put_be16(p + 44, r->kind);
        bp_put_be16(p + 46, r->flags);
        b->len += BP_IREC_SIZE;
    }
    if (put32(b, blk->n_idems)) return -ENOMEM;
    for (uint32_t i = 0; i < blk->n_idems; i++)
        if (put32(b, blk->idems[i].rec) || put_name(b, blk->idems[i].key, blk->idems[i].len))
            return -ENOMEM;
    if (blk->seqs) {
        if (put32(b, blk->n_recs)) return -ENOMEM;
        for (uint32_t i = 0; i < blk->n_recs; i++) {
            uint8_t q[8];
            bp_put_be64(q, blk->seqs[i]);
            if (bp_buf_append(b, q, 8)) return -ENOMEM;
        }
    }
    return 0;
}

/* The version a footer or checkpoint holding blk is written with. */
static uint16_t block_version(const bp_iblock *blk) {
    return blk->seqs ? 2 : BP_FORMAT_VERSION;
}

void bp_iblock_free(bp_iblock *blk) {
    if (!blk) return;
    free(blk->recs);
    free(blk->entities);
    free(blk->entity_heads);
    free(blk->scopes);
    free(blk->idems);
    free(blk->seqs);
    free(blk->strings);
    memset(blk, 0, sizeof *blk);
}

/* A bounds-checked reader. Invariant: pos <= n; once bad, every read fails. */
typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    bool bad;
} rd;

static const uint8_t *take(rd *r, size_t k) {
    if (r->bad || r->n - r->pos < k) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += k;
    return q;
}

static uint32_t take32(rd *r) {
    const uint8_t *q = take(r, 4);
    return q ? bp_get_be32(q) : 0;
}

/* Read a u16-length name into *sp (copied, NUL-terminated). */
static bool take_name(rd *r, char **sp, const char **name, uint16_t *len, uint16_t min,
                      uint16_t max) {
    const uint8_t *q = take(r, 2);
    if (!q) return false;
    uint16_t l = bp_get_be16(q);
    if (l < min || l > max || !(q = take(r, l))) {
        r->bad = true;
        return false;
    }
    memcpy(*sp, q, l);
    (*sp)[l] = '\0';
    if (memchr(*sp, '\0', l)) {
        r->bad = true;
        return false;
    }
    *name = *sp;
    *len = l;
    *sp += l + 1;
    return true;
}

static void *alloc_array(uint32_t count, size_t size, size_t remaining, size_t min_each) {
    if ((size_t)count * min_each > remaining) return NULL;
    return calloc(count ? count : 1, size);
}

bp_status bp_iblock_decode(bp_iblock *blk, const uint8_t *p, size_t n, const char *what) {
    memset(blk, 0, sizeof *blk);
    rd r = {p, n, 0, false};
    const uint8_t *q = take(&r, 8);
    if (!q) goto bad;
    blk->first_seq = bp_get_be64(q);
    /* all strings are copied into one allocation no larger than the input */
    if (!(blk->strings = malloc(n + 1))) return bp_err(BP_ENOMEM, "%s: out of memory", what);
    char *sp = blk->strings;
    blk->n_entities = take32(&r);
    blk->entities = alloc_array(blk->n_entities, sizeof(bp_iname), n - r.pos, 2 + 32);
    blk->entity_heads = alloc_array(blk->n_entities, sizeof(bp_hash), n - r.pos, 2 + 32);
    if (r.bad || !blk->entities || !blk->entity_heads) goto bad;
    for (uint32_t i = 0; i < blk->n_entities; i++) {
        if (!take_name(&r, &sp, &blk->entities[i].name, &blk->entities[i].len, 1, BP_COORD_MAX) ||
            !(q = take(&r, 32)))
            goto bad;
        memcpy(blk->entity_heads[i].b, q, 32);
    }
    blk->n_scopes = take32(&r);
    blk->scopes = alloc_array(blk->n_scopes, sizeof(bp_iname), n - r.pos, 2);
    if (r.bad || !blk->scopes) goto bad;
    for (uint32_t i = 0; i < blk->n_scopes; i++)
        if (!take_name(&r, &sp, &blk->scopes[i].name, &blk->scopes[i].len, 1, BP_COORD_MAX))
            goto bad;
    blk->n_recs = take32(&r);
    blk->recs = alloc_array(blk->n_recs, sizeof(bp_irec), n - r.pos, BP_IREC_SIZE);
    if (r.bad || !blk->recs) goto bad;
    for (uint32_t i = 0; i < blk->n_recs; i++) {
        bp_irec *x = &blk->recs[i];
        if (!(q = take(&r, BP_IREC_SIZE))) goto bad;
        memcpy(x->id.b, q, 16);
        x->hlc = bp_get_be64(q + 16);
        x->segno = bp_get_be32(q + 24);
        x->offset = bp_get_be32(q + 28);
        x->frame_len = bp_get_be32(q + 32);
        x->entity = bp_get_be32(q + 36);
        x->scope = bp_get_be32(q + 40);
        x->kind = bp_get_be16(q + 44);
        x->flags = bp_get_be16(q + 46);
        if (x->entity >= blk->n_entities || x->scope >= blk->n_scopes ||
            x->frame_len < BP_FRAME_PREFIX + BP_FRAME_MIN_BODY || x->offset < BP_SEG_HEADER_SIZE)
            goto bad;
    }
    blk->n_idems = take32(&r);
    blk->idems = alloc_array(blk->n_idems, sizeof(bp_iidem), n - r.pos, 6);
    if (r.bad || !blk->idems) goto bad;
    for (uint32_t i = 0; i < blk->n_idems; i++) {
        blk->idems[i].rec = take32(&r);
        if (r.bad || blk->idems[i].rec >= blk->n_recs ||
            !take_name(&r, &sp, &blk->idems[i].key, &blk->idems[i].len, 1, BP_IDEMPOTENCY_KEY_MAX))
            goto bad;
    }
    if (r.pos != n) { /* the seq section of a compacted segment's block */
        if (take32(&r) != blk->n_recs || !blk->n_recs ||
            !(blk->seqs = alloc_array(blk->n_recs, 8, n - r.pos, 8)))
            goto bad;
        for (uint32_t i = 0; i < blk->n_recs; i++) {
            if (!(q = take(&r, 8))) goto bad;
            blk->seqs[i] = bp_get_be64(q);
            if (i ? blk->seqs[i] <= blk->seqs[i - 1] : blk->seqs[0] != blk->first_seq) goto bad;
        }
        if (r.pos != n) goto bad;
    }
    return BP_OK;
bad:
    bp_iblock_free(blk);
    return bp_err(BP_ECORRUPT, "%s: malformed index block", what);
}

/* A footer or checkpoint of version v holds a block with a seq section iff v == 2. */
static bp_status check_block_version(bp_iblock *blk, uint16_t v, const char *path) {
    if ((v == 2) == (blk->seqs != NULL)) return BP_OK;
    bp_iblock_free(blk);
    return bp_err(BP_ECORRUPT, "%s: version %u, but the index block %s a seq section", path, v,
                  v == 2 ? "lacks" : "has");
}

/* --------------------------------------------------------------- footer */

int bp_footer_encode(bp_buf *b, const bp_iblock *blk, uint64_t footer_offset) {
    size_t start = b->len;
    uint8_t h[12] = {'S', 'I', 'D', 'X', 0, 0, 0, 0, 0, 0, 0, 0};
    bp_put_be16(h + 4, block_version(blk));
    if (bp_buf_append(b, h, 12) || bp_iblock_encode(b, blk)) return -ENOMEM;
    bp_put_be32(b->data + start + 8, (uint32_t)(b->len - start - 12));
    uint32_t crc = bp_crc32(b->data + start, b->len - start);
    if (put32(b, crc)) return -ENOMEM;
    uint8_t t[BP_TRAILER_SIZE];
    bp_trailer_encode(t, footer_offset, (uint32_t)(b->len - start));
    return bp_buf_append(b, t, BP_TRAILER_SIZE);
}

void bp_trailer_encode(uint8_t t[BP_TRAILER_SIZE], uint64_t off, uint32_t len) {
    bp_put_be64(t, off);
    bp_put_be32(t + 8, len);
    memcpy(t + 12, "SEAL", 4);
}

bool bp_footer_find(const uint8_t *data, uint64_t file_size, uint64_t *off, uint32_t *len) {
    if (file_size < BP_SEG_HEADER_SIZE + 16 + BP_TRAILER_SIZE) return false;
    uint64_t end = file_size - BP_TRAILER_SIZE; /* the footer ends here */
    for (uint64_t p = end - 16;; p--) {
        if (memcmp(data + p, "SIDX", 4) == 0 && bp_get_be32(data + p + 8) == end - p - 16 &&
            bp_crc_tail_ok(data + p, (size_t)(end - p))) {
            *off = p;
            *len = (uint32_t)(end - p);
            return true;
        }
        if (p == BP_SEG_HEADER_SIZE) return false;
    }
}

bool bp_trailer_decode(const uint8_t t[BP_TRAILER_SIZE], uint64_t file_size, uint64_t *off,
                       uint32_t *len) {
    if (memcmp(t + 12, "SEAL", 4) != 0) return false;
    *off = bp_get_be64(t);
    *len = bp_get_be32(t + 8);
    /* written so that no sum can wrap: a crafted offset near 2^64 must not pass */
    return *off >= BP_SEG_HEADER_SIZE && *len >= 16 && file_size >= BP_TRAILER_SIZE &&
           *off <= file_size - BP_TRAILER_SIZE && *len == file_size - BP_TRAILER_SIZE - *off;
}

bp_status bp_footer_decode(bp_iblock *blk, const uint8_t *p, size_t n, const char *path) {
    memset(blk, 0, sizeof *blk);
    if (n < 16 || memcmp(p, "SIDX", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: SIDX footer: bad magic", path);
    uint16_t v = bp_get_be16(p + 4);
    if (v != 1 && v != 2)
        return bp_err(BP_EVERSION,
                      "%s: SIDX footer version %u is not supported (this build reads 1 and 2)",
                      path, v);
    if (bp_get_be32(p + 8) != n - 16)
        return bp_err(BP_ECORRUPT, "%s: SIDX footer: length mismatch", path);
    if (!bp_crc_tail_ok(p, n)) return bp_err(BP_ECORRUPT, "%s: SIDX footer: CRC mismatch", path);
    bp_status rc = bp_iblock_decode(blk, p + 12, n - 16, path);
    return rc ? rc : check_block_version(blk, v, path);
}

/* ----------------------------------------------------------- checkpoint */

#define CKPT_HEAD 60

int bp_ckpt_encode(bp_buf *b, const bp_ckpt_meta *m, const bp_iblock *blk) {
    size_t start = b->len;
    uint8_t h[CKPT_HEAD] = {'B', 'P', 'C', 'K'};
    bp_put_be16(h + 4, block_version(blk));
    memcpy(h + 8, m->uuid, 16);
    bp_put_be32(h + 24, m->covered_segno);
    bp_put_be64(h + 28, m->covered_offset);
    bp_put_be64(h + 36, m->last_hlc);
    memcpy(h + 44, m->last_id.b, 16);
    if (bp_buf_append(b, h, CKPT_HEAD) || put32(b, 0) || bp_iblock_encode(b, blk)) return -ENOMEM;
    bp_put_be32(b->data + start + CKPT_HEAD, (uint32_t)(b->len - start - CKPT_HEAD - 4));
    return put32(b, bp_crc32(b->data + start, b->len - start));
}

bp_status bp_ckpt_decode(bp_ckpt_meta *m, bp_iblock *blk, const uint8_t *p, size_t n,
                         const char *path) {
    memset(blk, 0, sizeof *blk);
    if (n < CKPT_HEAD + 8 || memcmp(p, "BPCK", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: bad magic", path);
    uint16_t v = bp_get_be16(p + 4);
    if (v != 1 && v != 2)
        return bp_err(BP_EVERSION,
                      "%s: checkpoint version %u is not supported (this build reads 1 and 2)", path,
                      v);
    if (!bp_crc_tail_ok(p, n)) return bp_err(BP_ECORRUPT, "%s: CRC mismatch", path);
    if (bp_get_be32(p + CKPT_HEAD) != n - CKPT_HEAD - 8)
        return bp_err(BP_ECORRUPT, "%s: length mismatch", path);
    memcpy(m->uuid, p + 8, 16);
    m->covered_segno = bp_get_be32(p + 24);
    m->covered_offset = bp_get_be64(p + 28);
    m->last_hlc = bp_get_be64(p + 36);
    memcpy(m->last_id.b, p + 44, 16);
    bp_status rc = bp_iblock_decode(blk, p + CKPT_HEAD + 4, n - CKPT_HEAD - 8, path);
    return rc ? rc : check_block_version(blk, v, path);
}
