/* Frame encode/decode (doc/FORMAT.md "Frames"). */
#include "format/format.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <zlib.h>

uint32_t bp_crc32(const void *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *b = p;
    while (n) {
        uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

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

static int buf_write(void *data, const char *p, size_t n) {
    return bp_buf_append(data, p, n) ? -1 : 0;
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n) {
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static void pack_str(msgpack_packer *pk, const char *p, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, p, n);
}

int bp_frame_encode(bp_buf *b, const bp_frame *fr) {
    const bp_event_fields *f = &fr->f;
    size_t start = b->len;
    if (bp_buf_reserve(b, BP_FRAME_PREFIX + 200 + f->entity_len + f->scope_len + f->idem_len +
                              f->payload_len))
        return -ENOMEM;
    b->len += BP_FRAME_PREFIX;
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    int rc = 0;
    rc |= msgpack_pack_array(&pk, BP_FRAME_FIELDS);
    rc |= msgpack_pack_uint8(&pk, BP_FRAME_BODY_VERSION);
    pack_bin(&pk, f->event_id.b, 16);
    pack_bin(&pk, f->correlation_id.b, 16);
    if (f->has_causation)
        pack_bin(&pk, f->causation_id.b, 16);
    else
        msgpack_pack_nil(&pk);
    rc |= msgpack_pack_uint64(&pk, f->global_seq);
    rc |= msgpack_pack_uint64(&pk, f->clock);
    rc |= msgpack_pack_uint64(&pk, f->hlc);
    rc |= msgpack_pack_uint16(&pk, f->kind);
    rc |= msgpack_pack_uint16(&pk, f->flags);
    pack_bin(&pk, f->prev_hash.b, 32);
    pack_bin(&pk, fr->event_hash.b, 32);
    pack_str(&pk, f->entity, f->entity_len);
    pack_str(&pk, f->scope, f->scope_len);
    if (f->batch_count) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint64(&pk, f->batch_id);
        msgpack_pack_uint32(&pk, f->batch_index);
        msgpack_pack_uint32(&pk, f->batch_count);
    } else {
        msgpack_pack_nil(&pk);
    }
    if (f->idem_len)
        pack_str(&pk, f->idem_key, f->idem_len);
    else
        msgpack_pack_nil(&pk);
    pack_bin(&pk, f->payload, f->payload_len);
    if (rc || b->len < start + BP_FRAME_PREFIX) {
        b->len = start;
        return -ENOMEM;
    }
    size_t body = b->len - start - BP_FRAME_PREFIX;
    bp_put_be32(b->data + start, (uint32_t)body);
    bp_put_be32(b->data + start + 4, bp_crc32(b->data + start + BP_FRAME_PREFIX, body));
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

/* ---- decoding */

static bool get_uint(const msgpack_object *o, uint64_t max, uint64_t *out) {
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max) return false;
    *out = o->via.u64;
    return true;
}

static bool get_bin(const msgpack_object *o, uint32_t want, const uint8_t **out) {
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != want) return false;
    *out = (const uint8_t *)o->via.bin.ptr;
    return true;
}

static bool get_str(const msgpack_object *o, uint32_t min, uint32_t max, const char **p,
                    size_t *n) {
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size > max)
        return false;
    *p = o->via.str.ptr;
    *n = o->via.str.size;
    return true;
}

static bp_status decode_fields(const msgpack_object *a, bp_frame *out) {
    bp_event_fields *f = &out->f;
    const uint8_t *b;
    uint64_t v;
    const char *what = "header";
    memset(out, 0, sizeof *out);
#define NEED(cond, name)                                                                           \
    do {                                                                                           \
        what = name;                                                                               \
        if (!(cond)) goto bad;                                                                     \
    } while (0)
    NEED(get_uint(&a[0], 255, &v) && v == BP_FRAME_BODY_VERSION, "body version");
    NEED(get_bin(&a[1], 16, &b), "event_id");
    memcpy(f->event_id.b, b, 16);
    NEED(get_bin(&a[2], 16, &b), "correlation_id");
    memcpy(f->correlation_id.b, b, 16);
    if (a[3].type != MSGPACK_OBJECT_NIL) {
        NEED(get_bin(&a[3], 16, &b), "causation_id");
        memcpy(f->causation_id.b, b, 16);
        f->has_causation = true;
    }
    NEED(get_uint(&a[4], UINT64_MAX, &f->global_seq) && f->global_seq > 0, "global_seq");
    NEED(get_uint(&a[5], UINT64_MAX, &f->clock) && f->clock > 0, "clock");
    NEED(get_uint(&a[6], UINT64_MAX, &f->hlc), "hlc");
    NEED(get_uint(&a[7], 0xFFFF, &v), "kind");
    f->kind = (uint16_t)v;
    NEED(get_uint(&a[8], 0xFFFF, &v), "flags");
    f->flags = (uint16_t)v;
    NEED(get_bin(&a[9], 32, &b), "prev_hash");
    memcpy(f->prev_hash.b, b, 32);
    NEED(get_bin(&a[10], 32, &b), "event_hash");
    memcpy(out->event_hash.b, b, 32);
    NEED(get_str(&a[11], 1, BP_COORD_MAX, &f->entity, &f->entity_len), "entity");
    NEED(get_str(&a[12], 1, BP_COORD_MAX, &f->scope, &f->scope_len), "scope");
    if (a[13].type != MSGPACK_OBJECT_NIL) {
        const msgpack_object *m = a[13].via.array.ptr;
        NEED(a[13].type == MSGPACK_OBJECT_ARRAY && a[13].via.array.size == 3, "batch marker");
        uint64_t idx, cnt;
        NEED(get_uint(&m[0], UINT64_MAX, &f->batch_id) && f->batch_id > 0 &&
                 get_uint(&m[1], UINT32_MAX, &idx) && get_uint(&m[2], UINT32_MAX, &cnt) &&
                 cnt > 0 && idx < cnt && f->batch_id + idx == f->global_seq,
             "batch marker");
        f->batch_index = (uint32_t)idx;
        f->batch_count = (uint32_t)cnt;
    }
    if (a[14].type != MSGPACK_OBJECT_NIL)
        NEED(get_str(&a[14], 1, BP_IDEMPOTENCY_KEY_MAX, &f->idem_key, &f->idem_len),
             "idempotency key");
    NEED(a[15].type == MSGPACK_OBJECT_BIN, "payload");
    f->payload = (const uint8_t *)a[15].via.bin.ptr;
    f->payload_len = a[15].via.bin.size;
    return BP_OK;
bad:
    return bp_err(BP_ECORRUPT, "frame body: invalid %s", what);
#undef NEED
}

bp_status bp_frame_decode(const uint8_t *body, size_t len, bp_frame *out) {
    msgpack_zone zone;
    msgpack_object obj;
    if (!msgpack_zone_init(&zone, 2048)) return bp_err(BP_ENOMEM, "frame decode: out of memory");
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack((const char *)body, len, &off, &zone, &obj);
    bp_status rc;
    if (r != MSGPACK_UNPACK_SUCCESS || off != len)
        rc = bp_err(BP_ECORRUPT, "frame body: not one complete MessagePack value");
    else if (obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size != BP_FRAME_FIELDS)
        rc = bp_err(BP_ECORRUPT, "frame body: expected an array of %d fields", BP_FRAME_FIELDS);
    else
        rc = decode_fields(obj.via.array.ptr, out);
    msgpack_zone_destroy(&zone);
    return rc;
}
