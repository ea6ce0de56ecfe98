/* Frame encode/decode (doc/FORMAT.md "Frames"). */
#include "format/format.h"
#include "format/mp.h"

#include <errno.h>
#include <stdlib.h>

bool bp_crc_tail_ok(const uint8_t *p, size_t n) {
    return n >= 4 && bp_crc32(p, n - 4) == bp_get_be32(p + n - 4);
}

int bp_buf_reserve(bp_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) return -ENOMEM;
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int bp_buf_append(bp_buf *b, const void *p, size_t n) {
    if (bp_buf_reserve(b, n)) return -ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void bp_buf_free(bp_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- encoding: the MessagePack subset a frame uses, written by hand (the
 * layout is fixed, so no general packer is needed on the append path). Each
 * value takes its shortest encoding, as msgpack-c would write it. */

static uint8_t *put_uint(uint8_t *p, uint64_t v) {
    if (v < 128) {
        *p++ = (uint8_t)v;
    } else if (v <= 0xFF) {
        *p++ = 0xcc;
        *p++ = (uint8_t)v;
    } else if (v <= 0xFFFF) {
        *p++ = 0xcd;
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
        p += 2;
    } else if (v <= 0xFFFFFFFFu) {
        *p++ = 0xce;
        bp_put_be32(p, (uint32_t)v);
        p += 4;
    } else {
        *p++ = 0xcf;
        bp_put_be64(p, v);
        p += 8;
    }
    return p;
}

/* bin (str = false) or str header for n bytes, then the bytes */
static uint8_t *put_raw(uint8_t *p, bool str, const void *data, size_t n) {
    if (str && n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else if (n <= 0xFF) {
        *p++ = str ? 0xd9 : 0xc4;
        *p++ = (uint8_t)n;
    } else if (n <= 0xFFFF) {
        *p++ = str ? 0xda : 0xc5;
        p[0] = (uint8_t)(n >> 8);
        p[1] = (uint8_t)n;
        p += 2;
    } else {
        *p++ = str ? 0xdb : 0xc6;
        bp_put_be32(p, (uint32_t)n);
        p += 4;
    }
    if (n) memcpy(p, data, n);
    return p + n;
}

int bp_frame_encode(bp_buf *b, const bp_frame *fr) {
    const bp_event_fields *f = &fr->f;
    /* fixed fields take at most 3+1+18+18+18+9+9+9+3+3+34+34+1+21+5 = 186 bytes, each
     * string or bin header at most 5 */
    if (bp_buf_reserve(b, BP_FRAME_PREFIX + 200 + f->entity_len + f->scope_len + f->idem_len +
                              f->payload_len))
        return -ENOMEM;
    uint8_t *start = b->data + b->len, *p = start + BP_FRAME_PREFIX;
    *p++ = 0xdc; /* array 16 */
    *p++ = 0x00;
    *p++ = BP_FRAME_FIELDS;
    p = put_uint(p, BP_FRAME_BODY_VERSION);
    p = put_raw(p, false, f->event_id.b, 16);
    if (memcmp(f->correlation_id.b, f->event_id.b, 16) == 0)
        *p++ = 0xc0; /* nil: the event is its own correlation */
    else
        p = put_raw(p, false, f->correlation_id.b, 16);
    if (f->has_causation)
        p = put_raw(p, false, f->causation_id.b, 16);
    else
        *p++ = 0xc0;
    p = put_uint(p, f->global_seq);
    p = put_uint(p, f->clock);
    p = put_uint(p, f->hlc);
    p = put_uint(p, f->kind);
    p = put_uint(p, f->flags);
    p = put_raw(p, false, f->prev_hash.b, 32);
    p = put_raw(p, false, fr->event_hash.b, 32);
    p = put_raw(p, true, f->entity, f->entity_len);
    p = put_raw(p, true, f->scope, f->scope_len);
    if (f->batch_count) {
        *p++ = 0x93; /* array 3 */
        p = put_uint(p, f->batch_id);
        p = put_uint(p, f->batch_index);
        p = put_uint(p, f->batch_count);
    } else {
        *p++ = 0xc0;
    }
    if (f->idem_len)
        p = put_raw(p, true, f->idem_key, f->idem_len);
    else
        *p++ = 0xc0;
    p = put_raw(p, false, f->payload, f->payload_len);
    size_t body = (size_t)(p - start) - BP_FRAME_PREFIX;
    bp_put_be32(start, (uint32_t)body);
    bp_put_be32(start + 4, bp_crc32(start + BP_FRAME_PREFIX, body));
    b->len += BP_FRAME_PREFIX + body;
    return 0;
}

bp_frame_check bp_frame_peek(const uint8_t *p, size_t avail, uint32_t *frame_len) {
    *frame_len = 0;
    if (avail < BP_FRAME_PREFIX) return BP_FRAME_SHORT;
    uint32_t body = bp_get_be32(p);
    if (body < BP_FRAME_MIN_BODY || body > BP_FRAME_MAX_BODY) return BP_FRAME_BAD;
    *frame_len = BP_FRAME_PREFIX + body;
    if (avail < *frame_len) return BP_FRAME_SHORT;
    if (bp_crc32(p + BP_FRAME_PREFIX, body) != bp_get_be32(p + 4)) return BP_FRAME_BAD;
    return BP_FRAME_OK;
}

uint32_t bp_frame_body_len(const uint8_t *p, size_t avail) {
    return avail < BP_FRAME_PREFIX ? 0 : bp_get_be32(p);
}

bool bp_frame_find(const uint8_t *p, size_t from, size_t end, size_t *at) {
    /* a body is an array16 of 16 fields: dc 00 10 */
    for (size_t o = from; o < end && end - o >= BP_FRAME_PREFIX + BP_FRAME_MIN_BODY; o++) {
        const uint8_t *q = p + o;
        if (q[BP_FRAME_PREFIX] != 0xdc || q[BP_FRAME_PREFIX + 1] != 0x00 ||
            q[BP_FRAME_PREFIX + 2] != BP_FRAME_FIELDS)
            continue;
        uint32_t flen;
        if (bp_frame_peek(q, end - o, &flen) == BP_FRAME_OK) {
            if (at) *at = o;
            return true;
        }
    }
    return false;
}

/* ---- decoding: a strict reader of the same subset. Any valid MessagePack
 * encoding of a field's type is accepted (not only the shortest); anything
 * else, or bytes left over, is corruption. */

static bool rd_id(bp_mp_rd *r, uint8_t *out, size_t want) {
    const uint8_t *d;
    size_t n;
    if (!bp_mp_raw(r, false, want, want, &d, &n)) return false;
    memcpy(out, d, want);
    return true;
}

bp_status bp_frame_decode(const uint8_t *body, size_t len, bp_frame *out) {
    bp_event_fields *f = &out->f;
    bp_mp_rd r = {body, body + len};
    const uint8_t *d;
    size_t n;
    uint64_t v;
    const char *what = "header";
    memset(out, 0, sizeof *out);
#define NEED(cond, name)                                                                           \
    do {                                                                                           \
        what = name;                                                                               \
        if (!(cond)) goto bad;                                                                     \
    } while (0)
    NEED(len >= 3 && body[0] == 0xdc && body[1] == 0 && body[2] == BP_FRAME_FIELDS, "header");
    r.p += 3;
    NEED(bp_mp_uint(&r, 255, &v) && v == BP_FRAME_BODY_VERSION, "body version");
    NEED(rd_id(&r, f->event_id.b, 16), "event_id");
    if (bp_mp_nil(&r))
        f->correlation_id = f->event_id;
    else
        NEED(rd_id(&r, f->correlation_id.b, 16), "correlation_id");
    if (!bp_mp_nil(&r)) {
        NEED(rd_id(&r, f->causation_id.b, 16), "causation_id");
        f->has_causation = true;
    }
    NEED(bp_mp_uint(&r, UINT64_MAX, &f->global_seq) && f->global_seq > 0, "global_seq");
    NEED(bp_mp_uint(&r, UINT64_MAX, &f->clock) && f->clock > 0, "clock");
    NEED(bp_mp_uint(&r, UINT64_MAX, &f->hlc), "hlc");
    NEED(bp_mp_uint(&r, 0xFFFF, &v), "kind");
    f->kind = (uint16_t)v;
    NEED(bp_mp_uint(&r, 0xFFFF, &v), "flags");
    f->flags = (uint16_t)v;
    NEED(rd_id(&r, f->prev_hash.b, 32), "prev_hash");
    NEED(rd_id(&r, out->event_hash.b, 32), "event_hash");
    NEED(bp_mp_raw(&r, true, 1, BP_COORD_MAX, &d, &f->entity_len), "entity");
    f->entity = (const char *)d;
    NEED(bp_mp_raw(&r, true, 1, BP_COORD_MAX, &d, &f->scope_len), "scope");
    f->scope = (const char *)d;
    if (!bp_mp_nil(&r)) {
        uint64_t idx, cnt;
        what = "batch marker";
        if (r.p < r.end && *r.p == 0x93)
            r.p++;
        else
            goto bad;
        NEED(bp_mp_uint(&r, UINT64_MAX, &f->batch_id) && f->batch_id > 0 &&
                 bp_mp_uint(&r, UINT32_MAX, &idx) && bp_mp_uint(&r, UINT32_MAX, &cnt) && cnt > 0 &&
                 idx < cnt && f->batch_id + idx == f->global_seq,
             "batch marker");
        f->batch_index = (uint32_t)idx;
        f->batch_count = (uint32_t)cnt;
    }
    if (!bp_mp_nil(&r)) {
        NEED(bp_mp_raw(&r, true, 1, BP_IDEMPOTENCY_KEY_MAX, &d, &n), "idempotency key");
        f->idem_key = (const char *)d;
        f->idem_len = n;
    }
    NEED(bp_mp_raw(&r, false, 0, BP_FRAME_MAX_BODY, &d, &n), "payload");
    f->payload = d;
    f->payload_len = n;
    NEED(r.p == r.end, "length (bytes after the payload)");
    return BP_OK;
bad:
    return bp_err(BP_ECORRUPT, "frame body: invalid %s", what);
#undef NEED
}
