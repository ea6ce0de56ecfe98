/* DIR/ANCHORS and the DIR/COMPACT manifest of a compaction (doc/FORMAT.md "Compaction"). */
#include "format/format.h"

#include <errno.h>
#include <stdlib.h>

#define ANCHORS_HEAD 28 /* magic, version, reserved, first, last, upto, n */

static int put(bp_buf *b, const void *p, size_t n) {
    return bp_buf_append(b, p, n);
}

static int put32(bp_buf *b, uint32_t v) {
    uint8_t t[4];
    bp_put_be32(t, v);
    return put(b, t, 4);
}

static int put64(bp_buf *b, uint64_t v) {
    uint8_t t[8];
    bp_put_be64(t, v);
    return put(b, t, 8);
}

int bp_anchors_encode(bp_buf *b, const bp_anchors *a) {
    size_t start = b->len;
    uint8_t h[8] = {'B', 'P', 'A', 'N', 0, 1, 0, 0};
    if (put(b, h, 8) || put32(b, a->first_segno) || put32(b, a->last_segno) || put64(b, a->upto) ||
        put32(b, a->n))
        return -ENOMEM;
    for (uint32_t i = 0; i < a->n; i++) {
        uint8_t l[2];
        bp_put_be16(l, a->v[i].len);
        if (put(b, l, 2) || put(b, a->v[i].entity, a->v[i].len) || put64(b, a->v[i].clock) ||
            put(b, a->v[i].hash.b, 32))
            return -ENOMEM;
    }
    return put32(b, bp_crc32(b->data + start, b->len - start));
}

void bp_anchors_free(bp_anchors *a) {
    if (!a) return;
    free(a->v);
    free(a->strings);
    memset(a, 0, sizeof *a);
}

static int cmp_anchor(const void *x, const void *y) {
    const bp_anchor *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->entity, b->entity, n);
    return c ? c : (int)a->len - (int)b->len;
}

bp_status bp_anchors_decode(bp_anchors *a, const uint8_t *p, size_t n, const char *path) {
    memset(a, 0, sizeof *a);
    if (n < ANCHORS_HEAD + 4 || memcmp(p, "BPAN", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: not an anchors file (bad magic or size)", path);
    if (bp_get_be16(p + 4) != 1)
        return bp_err(BP_EVERSION, "%s: anchors version %u is not supported (this build reads 1)",
                      path, bp_get_be16(p + 4));
    if (!bp_crc_tail_ok(p, n)) return bp_err(BP_ECORRUPT, "%s: CRC mismatch", path);
    if (bp_get_be16(p + 6) != 0)
        return bp_err(BP_ECORRUPT, "%s: offset 6: reserved bytes are not zero", path);
    a->first_segno = bp_get_be32(p + 8);
    a->last_segno = bp_get_be32(p + 12);
    a->upto = bp_get_be64(p + 16);
    uint32_t count = bp_get_be32(p + 24);
    size_t pos = ANCHORS_HEAD, end = n - 4;
    const char *why = NULL;
    if (a->first_segno == 0 || a->last_segno == UINT32_MAX || a->first_segno > a->last_segno + 1)
        why = "segment range invalid";
    else if ((uint64_t)count * (2 + 1 + 8 + 32) > end - pos)
        why = "anchor count larger than the file";
    else if (count && !a->upto)
        why = "anchors without a compacted range";
    if (!why) {
        a->v = calloc(count ? count : 1, sizeof *a->v);
        a->strings = malloc(end - pos + 1);
        if (!a->v || !a->strings) {
            bp_anchors_free(a);
            return bp_err(BP_ENOMEM, "%s: out of memory", path);
        }
    }
    char *sp = a->strings;
    for (uint32_t i = 0; i < count && !why; i++) {
        if (end - pos < 2) {
            why = "truncated";
            break;
        }
        uint16_t l = bp_get_be16(p + pos);
        pos += 2;
        if (l < 1 || l > BP_COORD_MAX || end - pos < (size_t)l + 40 || memchr(p + pos, 0, l)) {
            why = "anchor entity malformed";
            break;
        }
        memcpy(sp, p + pos, l);
        sp[l] = '\0';
        bp_anchor *x = &a->v[a->n++];
        x->entity = sp;
        x->len = l;
        sp += l + 1;
        pos += l;
        x->clock = bp_get_be64(p + pos);
        memcpy(x->hash.b, p + pos + 8, 32);
        pos += 40;
        if (!x->clock) why = "anchor clock 0";
    }
    if (!why && pos != end) why = "trailing bytes";
    if (!why && a->n > 1) { /* entities must be distinct */
        bp_anchor *sorted = malloc(a->n * sizeof *sorted);
        if (!sorted) {
            bp_anchors_free(a);
            return bp_err(BP_ENOMEM, "%s: out of memory", path);
        }
        memcpy(sorted, a->v, a->n * sizeof *sorted);
        qsort(sorted, a->n, sizeof *sorted, cmp_anchor);
        for (uint32_t i = 1; i < a->n && !why; i++)
            if (!cmp_anchor(&sorted[i - 1], &sorted[i])) why = "an entity has two anchors";
        free(sorted);
    }
    if (why) {
        bp_anchors_free(a);
        return bp_err(BP_ECORRUPT, "%s: %s", path, why);
    }
    return BP_OK;
}

#define MANIFEST_HEAD 24 /* magic, version, reserved, old_first, old_last, new_first, n_new */

int bp_cmanifest_encode(bp_buf *b, const bp_cmanifest *m) {
    size_t start = b->len;
    uint8_t h[8] = {'B', 'P', 'C', 'M', 0, 1, 0, 0};
    if (put(b, h, 8) || put32(b, m->old_first) || put32(b, m->old_last) || put32(b, m->new_first) ||
        put32(b, m->n_new))
        return -ENOMEM;
    for (uint32_t i = 0; i < m->n_new; i++)
        if (put64(b, m->sizes[i]) || put32(b, m->crcs[i])) return -ENOMEM;
    if (put32(b, (uint32_t)m->anchors_len) || put(b, m->anchors, m->anchors_len)) return -ENOMEM;
    return put32(b, bp_crc32(b->data + start, b->len - start));
}

void bp_cmanifest_free(bp_cmanifest *m) {
    if (!m) return;
    free(m->sizes);
    free(m->crcs);
    memset(m, 0, sizeof *m);
}

bp_status bp_cmanifest_decode(bp_cmanifest *m, const uint8_t *p, size_t n, const char *path) {
    memset(m, 0, sizeof *m);
    if (n < MANIFEST_HEAD + 8 || memcmp(p, "BPCM", 4) != 0)
        return bp_err(BP_ECORRUPT, "%s: not a compaction manifest (bad magic or size)", path);
    if (bp_get_be16(p + 4) != 1)
        return bp_err(BP_EVERSION,
                      "%s: compaction manifest version %u is not supported (this build reads 1)",
                      path, bp_get_be16(p + 4));
    if (!bp_crc_tail_ok(p, n)) return bp_err(BP_ECORRUPT, "%s: CRC mismatch", path);
    m->old_first = bp_get_be32(p + 8);
    m->old_last = bp_get_be32(p + 12);
    m->new_first = bp_get_be32(p + 16);
    m->n_new = bp_get_be32(p + 20);
    size_t pos = MANIFEST_HEAD, end = n - 4;
    if (bp_get_be16(p + 6) != 0 || m->old_first == 0 || m->old_first > m->old_last ||
        m->old_last == UINT32_MAX || m->new_first < m->old_first ||
        m->new_first > m->old_last + 1 || m->n_new != m->old_last + 1 - m->new_first ||
        (uint64_t)m->n_new * 12 > end - pos)
        return bp_err(BP_ECORRUPT, "%s: segment ranges invalid", path);
    m->sizes = malloc((m->n_new ? m->n_new : 1) * sizeof *m->sizes);
    m->crcs = malloc((m->n_new ? m->n_new : 1) * sizeof *m->crcs);
    if (!m->sizes || !m->crcs) {
        bp_cmanifest_free(m);
        return bp_err(BP_ENOMEM, "%s: out of memory", path);
    }
    for (uint32_t i = 0; i < m->n_new; i++, pos += 12) {
        m->sizes[i] = bp_get_be64(p + pos);
        m->crcs[i] = bp_get_be32(p + pos + 8);
    }
    if (end - pos < 4 || bp_get_be32(p + pos) != end - pos - 4) {
        bp_cmanifest_free(m);
        return bp_err(BP_ECORRUPT, "%s: anchors length mismatch", path);
    }
    m->anchors = p + pos + 4;
    m->anchors_len = end - pos - 4;
    return BP_OK;
}
