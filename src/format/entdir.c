/* The entity checkpoint (entdir.h, doc/FORMAT.md "entities.ckpt"). */
#include "format/entdir.h"
#include "format/six.h" /* bp_six_name_cmp: the order of names */

#include <errno.h>

static const uint8_t MAGIC[4] = {'B', 'P', 'E', 'C'};
#define ENT_FIXED (1 + 8 + 32) /* len u8 | clock u64 | head (then the name) */

int bp_entdir_begin(bp_buf *b, const bp_entdir_meta *m) {
    uint8_t h[BP_ENTDIR_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, MAGIC, 4);
    bp_put_be16(h + 4, BP_ENTDIR_VERSION);
    memcpy(h + 8, m->uuid, 16);
    bp_put_be32(h + 24, m->segno);
    bp_put_be32(h + 28, m->footer_crc);
    bp_put_be64(h + 32, m->seg_size);
    bp_put_be64(h + 40, m->seqs);
    bp_put_be64(h + 48, m->holes);
    bp_put_be64(h + 56, m->anchors_upto);
    bp_put_be32(h + 64, m->anchors_last_segno);
    return bp_buf_append(b, h, sizeof h);
}

int bp_entdir_add_entity(bp_buf *b, const char *name, size_t len, uint64_t clock,
                         const bp_hash *head) {
    if (!len || len > 255 || !clock) return -EINVAL;
    if (bp_buf_reserve(b, ENT_FIXED + len)) return -ENOMEM;
    uint8_t *p = b->data + b->len;
    p[0] = (uint8_t)len;
    bp_put_be64(p + 1, clock);
    memcpy(p + 9, head->b, 32);
    memcpy(p + ENT_FIXED, name, len);
    b->len += ENT_FIXED + len;
    return 0;
}

int bp_entdir_add_scope(bp_buf *b, const char *name, size_t len) {
    if (!len || len > 255) return -EINVAL;
    if (bp_buf_reserve(b, 1 + len)) return -ENOMEM;
    b->data[b->len] = (uint8_t)len;
    memcpy(b->data + b->len + 1, name, len);
    b->len += 1 + len;
    return 0;
}

int bp_entdir_finish(bp_buf *b, uint32_t n_entities, uint32_t n_scopes) {
    if (b->len < BP_ENTDIR_HEADER || bp_buf_reserve(b, 4)) return -ENOMEM;
    bp_put_be32(b->data + 68, n_entities);
    bp_put_be32(b->data + 72, n_scopes);
    bp_put_be32(b->data + b->len, bp_crc32(b->data, b->len));
    b->len += 4;
    return 0;
}

bp_status bp_entdir_open(bp_entdir *d, const uint8_t *p, size_t n, const char *path) {
    memset(d, 0, sizeof *d);
    if (n < 4 || memcmp(p, MAGIC, 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 0: not an entity checkpoint (bad magic)", path);
    if (n < BP_ENTDIR_HEADER + 4) return bp_err(BP_ECORRUPT, "%s: cut short (%zu bytes)", path, n);
    if (bp_get_be16(p + 4) != BP_ENTDIR_VERSION)
        return bp_err(BP_EVERSION, "%s: offset 4: version %u (this build reads %u)", path,
                      bp_get_be16(p + 4), BP_ENTDIR_VERSION);
    if (bp_get_be32(p + n - 4) != bp_crc32(p, n - 4))
        return bp_err(BP_ECORRUPT, "%s: CRC mismatch", path);
    bp_entdir_meta *m = &d->m;
    memcpy(m->uuid, p + 8, 16);
    m->segno = bp_get_be32(p + 24);
    m->footer_crc = bp_get_be32(p + 28);
    m->seg_size = bp_get_be64(p + 32);
    m->seqs = bp_get_be64(p + 40);
    m->holes = bp_get_be64(p + 48);
    m->anchors_upto = bp_get_be64(p + 56);
    m->anchors_last_segno = bp_get_be32(p + 64);
    m->n_entities = bp_get_be32(p + 68);
    m->n_scopes = bp_get_be32(p + 72);
    d->name_bytes = 0;
    d->clock_sum = 0;
    if (bp_get_be16(p + 6) != 0 || m->holes > m->seqs)
        return bp_err(BP_ECORRUPT, "%s: offset 6: flags or holes out of range", path);
    /* every entry's length within the file, the counts exact */
    if (n > UINT32_MAX) return bp_err(BP_ECORRUPT, "%s: larger than 4 GiB", path);
    /* every entry's length within the file, the counts exact; the names strictly ascending */
    size_t pos = BP_ENTDIR_HEADER, end = n - 4, prev = 0;
    for (uint32_t i = 0; i < m->n_entities; i++) {
        if (end - pos < ENT_FIXED || p[pos] == 0 || end - pos - ENT_FIXED < p[pos] ||
            bp_get_be64(p + pos + 1) == 0)
            return bp_err(BP_ECORRUPT, "%s: offset %zu: entity %u is cut short or empty", path, pos,
                          i);
        if (i && bp_six_name_cmp((const char *)p + prev + ENT_FIXED, p[prev],
                                 (const char *)p + pos + ENT_FIXED, p[pos]) >= 0)
            return bp_err(BP_ECORRUPT, "%s: offset %zu: entity %u is not past the one before it",
                          path, pos, i);
        d->name_bytes += p[pos] + 1u;
        d->clock_sum += bp_get_be64(p + pos + 1);
        prev = pos;
        pos += ENT_FIXED + p[pos];
    }
    d->scopes_off = pos;
    for (uint32_t i = 0; i < m->n_scopes; i++) {
        if (end - pos < 1 || p[pos] == 0 || end - pos - 1 < p[pos])
            return bp_err(BP_ECORRUPT, "%s: offset %zu: scope %u is cut short or empty", path, pos,
                          i);
        pos += 1 + p[pos];
    }
    if (pos != end)
        return bp_err(BP_ECORRUPT, "%s: offset %zu: %zu bytes past the last scope", path, pos,
                      end - pos);
    d->p = p;
    d->n = n;
    d->ents_off = BP_ENTDIR_HEADER;
    return BP_OK;
}

void bp_entdir_entity(const bp_entdir *d, size_t *pos, const char **name, uint8_t *len,
                      uint64_t *clock, bp_hash *head) {
    const uint8_t *q = d->p + *pos;
    *len = q[0];
    *clock = bp_get_be64(q + 1);
    memcpy(head->b, q + 9, 32);
    *name = (const char *)q + ENT_FIXED;
    *pos += ENT_FIXED + q[0];
}

void bp_entdir_scope(const bp_entdir *d, size_t *pos, const char **name, uint8_t *len) {
    const uint8_t *q = d->p + *pos;
    *len = q[0];
    *name = (const char *)q + 1;
    *pos += 1 + q[0];
}

void bp_entdir_offsets(const bp_entdir *d, uint32_t *out) {
    size_t pos = d->ents_off;
    for (uint32_t i = 0; i < d->m.n_entities; i++) {
        out[i] = (uint32_t)pos;
        pos += ENT_FIXED + d->p[pos];
    }
}

int64_t bp_entdir_find(const bp_entdir *d, const uint32_t *offs, const char *name, size_t len,
                       uint32_t *at) {
    uint32_t lo = 0, hi = d->m.n_entities;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *q = d->p + offs[mid];
        if (bp_six_name_cmp((const char *)q + ENT_FIXED, q[0], name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at) *at = lo;
    if (lo == d->m.n_entities) return -1;
    const uint8_t *q = d->p + offs[lo];
    return q[0] == len && memcmp(q + ENT_FIXED, name, len) == 0 ? (int64_t)lo : -1;
}
