/*
 * denial.c — the payload of a SYSTEM_DENIAL event (doc/FORMAT.md "Denial payload"):
 * a MessagePack map {"v": 1, "kind": u16, "digest": bin 32, "denials": [{"gate": str,
 * "code": int32, "message": str}, ...]}, keys in that order.
 */
#include "format/format.h"

#include <msgpack.h>
#include <stdlib.h>

static void pack_key(msgpack_packer *p, const char *k) {
    msgpack_pack_str_with_body(p, k, strlen(k));
}

int bp_denial_payload_encode(bp_buf *b, uint16_t kind, const bp_hash *digest,
                             const bp_denial *denials, size_t n) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer p;
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&p, 4);
    pack_key(&p, "v");
    msgpack_pack_uint8(&p, 1);
    pack_key(&p, "kind");
    msgpack_pack_uint16(&p, kind);
    pack_key(&p, "digest");
    msgpack_pack_bin_with_body(&p, digest->b, 32);
    pack_key(&p, "denials");
    msgpack_pack_array(&p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(&p, 3);
        pack_key(&p, "gate");
        pack_key(&p, denials[i].gate);
        pack_key(&p, "code");
        msgpack_pack_int32(&p, denials[i].code);
        pack_key(&p, "message");
        pack_key(&p, denials[i].message);
    }
    int rc = sb.data ? bp_buf_append(b, sb.data, sb.size) : -1;
    msgpack_sbuffer_destroy(&sb);
    return rc ? -1 : 0;
}

static bool key_is(const msgpack_object *k, const char *name) {
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
           memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

/* Copy a str object into out (cap bytes incl. NUL); false when not a str, too long, or
 * holding a NUL. */
static bool get_str(const msgpack_object *o, char *out, size_t cap, size_t min) {
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap || o->via.str.size < min ||
        memchr(o->via.str.ptr, 0, o->via.str.size))
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

static bp_status decode_denial(const msgpack_object *o, bp_denial *d, uint32_t i) {
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 3)
        return bp_err(BP_EINVAL, "denial payload: denial %u is not a map of gate, code, message",
                      i);
    memset(d, 0, sizeof *d);
    unsigned seen = 0;
    for (uint32_t k = 0; k < 3; k++) {
        const msgpack_object *key = &o->via.map.ptr[k].key, *v = &o->via.map.ptr[k].val;
        if (key_is(key, "gate") && get_str(v, d->gate, sizeof d->gate, 1))
            seen |= 1;
        else if (key_is(key, "code") &&
                 ((v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT32_MAX) ||
                  (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 >= INT32_MIN))) {
            d->code = (int32_t)v->via.i64;
            seen |= 2;
        } else if (key_is(key, "message") && get_str(v, d->message, sizeof d->message, 0))
            seen |= 4;
        else
            return bp_err(BP_EINVAL, "denial payload: denial %u has a bad or unknown field %u", i,
                          k);
    }
    if (seen != 7) return bp_err(BP_EINVAL, "denial payload: denial %u lacks a field", i);
    return BP_OK;
}

bp_status bp_denial_record_decode(bp_denial_record *out, const void *payload, size_t len) {
    if (!out || (!payload && len)) return bp_err(BP_EINVAL, "denial payload: NULL argument");
    memset(out, 0, sizeof *out);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object root;
    size_t off = 0;
    bp_status rc = BP_OK;
    if (msgpack_unpack((const char *)payload, len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        rc = bp_err(BP_EINVAL, "denial payload: not exactly one MessagePack value");
        goto out;
    }
    if (root.type != MSGPACK_OBJECT_MAP || root.via.map.size != 4) {
        rc = bp_err(BP_EINVAL, "denial payload: not a map of v, kind, digest, denials");
        goto out;
    }
    unsigned seen = 0;
    for (uint32_t k = 0; k < 4 && !rc; k++) {
        const msgpack_object *key = &root.via.map.ptr[k].key, *v = &root.via.map.ptr[k].val;
        if (key_is(key, "v")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1)
                rc = bp_err(BP_EINVAL, "denial payload: unknown version (this build reads 1)");
            seen |= 1;
        } else if (key_is(key, "kind") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                   v->via.u64 <= 0xFFFF) {
            out->denied_kind = (uint16_t)v->via.u64;
            seen |= 2;
        } else if (key_is(key, "digest") && v->type == MSGPACK_OBJECT_BIN &&
                   v->via.bin.size == 32) {
            memcpy(out->proposal_digest.b, v->via.bin.ptr, 32);
            seen |= 4;
        } else if (key_is(key, "denials") && v->type == MSGPACK_OBJECT_ARRAY &&
                   v->via.array.size >= 1 && v->via.array.size <= BP_DENIALS_MAX) {
            out->n_denials = v->via.array.size;
            for (uint32_t i = 0; i < out->n_denials && !rc; i++)
                rc = decode_denial(&v->via.array.ptr[i], &out->denials[i], i);
            seen |= 8;
        } else {
            rc = bp_err(BP_EINVAL, "denial payload: field %u is unknown or has the wrong type", k);
        }
    }
    if (!rc && seen != 15) rc = bp_err(BP_EINVAL, "denial payload: a field is missing");
out:
    msgpack_zone_destroy(&zone);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}
