/* Projection snapshot files (doc/FORMAT.md "Projection snapshots"). */
#include "core/core.h"
#include <errno.h>
#include "format/format.h"

#define SNAP_MAGIC "BPPJ"
#define SNAP_VERSION 1u

int bp_projsnap_encode(bp_buf *b, const bp_projsnap *s) {
    size_t n = 4 + 4 + 2 + s->name_len + 4 + 2 + s->entity_len + 8 + 32 + 8 + s->state_size + 4;
    if (bp_buf_reserve(b, n)) return -ENOMEM;
    uint8_t *p = b->data + b->len, *start = p;
    memcpy(p, SNAP_MAGIC, 4);
    bp_put_be32(p + 4, SNAP_VERSION);
    p += 8;
    bp_put_be16(p, (uint16_t)s->name_len);
    memcpy(p + 2, s->name, s->name_len);
    p += 2 + s->name_len;
    bp_put_be32(p, s->version);
    bp_put_be16(p + 4, (uint16_t)s->entity_len);
    memcpy(p + 6, s->entity, s->entity_len);
    p += 6 + s->entity_len;
    bp_put_be64(p, s->clock);
    memcpy(p + 8, s->head.b, 32);
    bp_put_be64(p + 40, s->state_size);
    p += 48;
    memcpy(p, s->state, s->state_size);
    p += s->state_size;
    bp_put_be32(p, bp_crc32(start, (size_t)(p - start)));
    b->len += n;
    return 0;
}

bp_status bp_projsnap_decode(const uint8_t *p, size_t n, bp_projsnap *out) {
    const uint8_t *end = p + n, *q = p;
    if (n < 4 + 4 + 2 + 4 + 2 + 8 + 32 + 8 + 4 || memcmp(p, SNAP_MAGIC, 4) != 0)
        return bp_err(BP_ECORRUPT, "not a projection snapshot (short, or no BPPJ magic)");
    if (bp_get_be32(p + n - 4) != bp_crc32(p, n - 4))
        return bp_err(BP_ECORRUPT, "projection snapshot: crc mismatch");
    if (bp_get_be32(p + 4) != SNAP_VERSION)
        return bp_err(BP_EVERSION, "projection snapshot version %u (this library reads %u)",
                      bp_get_be32(p + 4), SNAP_VERSION);
    end -= 4;
    q += 8;
#define NEED(k)                                                                                    \
    if ((size_t)(end - q) < (k)) return bp_err(BP_ECORRUPT, "projection snapshot: truncated")
    NEED(2);
    out->name_len = bp_get_be16(q);
    q += 2;
    NEED(out->name_len + 6);
    out->name = (const char *)q;
    q += out->name_len;
    out->version = bp_get_be32(q);
    out->entity_len = bp_get_be16(q + 4);
    q += 6;
    NEED(out->entity_len + 48);
    out->entity = (const char *)q;
    q += out->entity_len;
    out->clock = bp_get_be64(q);
    memcpy(out->head.b, q + 8, 32);
    out->state_size = bp_get_be64(q + 40);
    q += 48;
    if ((uint64_t)(end - q) != out->state_size)
        return bp_err(BP_ECORRUPT, "projection snapshot: state size %llu does not match the file",
                      (unsigned long long)out->state_size);
    out->state = q;
#undef NEED
    return BP_OK;
}
