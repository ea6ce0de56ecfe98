/*
 * denial.c — the payload of a SYSTEM_DENIAL event (doc/FORMAT.md "Denial payload"):
 * a MessagePack map {"v": 1, "kind": u16, "digest": str (64 lower-case hex digits),
 * "denials": [{"gate": str, "code": int32, "message": str}, ...]}, keys in that order.
 * Every value has a JSON form, so tools show the payload as JSON.
 */
#include "format/format.h"
#include "format/mp.h"

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
    char hex[65];
    bp_hash_format(digest, hex);
    msgpack_pack_str_with_body(&p, hex, 64);
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

/* Decoding uses the format layer's reader (mp.h): it allocates nothing, so a hostile
 * length or count cannot make it allocate. */

/* A str of at most 255 bytes (a key, the digest); *k and *kl point into the buffer. */
static bool rd_str(bp_mp_rd *r, const char **k, size_t *kl) {
    const uint8_t *d;
    if (!bp_mp_raw(r, true, 0, 255, &d, kl)) return false;
    *k = (const char *)d;
    return true;
}

static bool key_is(const char *k, size_t kl, const char *name) {
    return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

/* Copy a str of min..cap-1 bytes without NUL into out, NUL-terminated. */
static bool rd_text(bp_mp_rd *r, char *out, size_t cap, size_t min) {
    const uint8_t *d;
    size_t n;
    if (!bp_mp_raw(r, true, min, cap - 1, &d, &n) || memchr(d, 0, n)) return false;
    memcpy(out, d, n);
    out[n] = '\0';
    return true;
}

static bp_status decode_denial(bp_mp_rd *r, bp_denial *d, uint32_t i) {
    uint32_t n;
    if (!bp_mp_count(r, true, 3, &n) || n != 3)
        return bp_err(BP_EINVAL, "denial payload: denial %u is not a map of gate, code, message",
                      i);
    memset(d, 0, sizeof *d);
    unsigned seen = 0;
    for (uint32_t k = 0; k < 3; k++) {
        const char *key;
        size_t kl;
        int64_t code;
        bool ok = rd_str(r, &key, &kl);
        if (ok && key_is(key, kl, "gate") && !(seen & 1)) {
            ok = rd_text(r, d->gate, sizeof d->gate, 1);
            seen |= 1;
        } else if (ok && key_is(key, kl, "code") && !(seen & 2)) {
            ok = bp_mp_int(r, INT32_MIN, INT32_MAX, &code);
            d->code = (int32_t)code;
            seen |= 2;
        } else if (ok && key_is(key, kl, "message") && !(seen & 4)) {
            ok = rd_text(r, d->message, sizeof d->message, 0);
            seen |= 4;
        } else
            ok = false;
        if (!ok)
            return bp_err(BP_EINVAL,
                          "denial payload: denial %u: field %u is unknown, repeated "
                          "or of the wrong type",
                          i, k);
    }
    return BP_OK;
}

bp_status bp_denial_record_decode(bp_denial_record *out, const void *payload, size_t len) {
    if (!out || (!payload && len)) return bp_err(BP_EINVAL, "denial payload: NULL argument");
    BP_SIZE_CHECK("bp_denial_record_decode", out, bp_denial_record, BP_DENIAL_RECORD_INIT);
    BP_OUT_RESET(out, bp_denial_record);
    bp_mp_rd r = {payload, (const uint8_t *)payload + len};
    uint32_t n;
    bp_status rc = BP_OK;
    if (!bp_mp_count(&r, true, 4, &n) || n != 4)
        return bp_err(BP_EINVAL, "denial payload: not a map of v, kind, digest, denials");
    unsigned seen = 0;
    for (uint32_t k = 0; k < 4 && !rc; k++) {
        const char *key, *s;
        size_t kl, sl;
        int64_t v;
        bool ok = rd_str(&r, &key, &kl);
        if (ok && key_is(key, kl, "v") && !(seen & 1)) {
            ok = bp_mp_int(&r, 0, INT64_MAX, &v);
            if (ok && v != 1)
                rc = bp_err(BP_EINVAL,
                            "denial payload: version %lld is unknown (this build "
                            "reads 1)",
                            (long long)v);
            seen |= 1;
        } else if (ok && key_is(key, kl, "kind") && !(seen & 2)) {
            ok = bp_mp_int(&r, 0, 0xFFFF, &v);
            out->denied_kind = (uint16_t)v;
            seen |= 2;
        } else if (ok && key_is(key, kl, "digest") && !(seen & 4)) {
            ok = rd_str(&r, &s, &sl) && bp_hex_decode(s, sl, out->proposal_digest.b, 32);
            seen |= 4;
        } else if (ok && key_is(key, kl, "denials") && !(seen & 8)) {
            ok = bp_mp_count(&r, false, BP_DENIALS_MAX, &out->n_denials) && out->n_denials >= 1;
            for (uint32_t i = 0; ok && i < out->n_denials && !rc; i++)
                rc = decode_denial(&r, &out->denials[i], i);
            seen |= 8;
        } else
            ok = false;
        if (!ok && !rc)
            rc = bp_err(BP_EINVAL,
                        "denial payload: field %u is unknown, repeated or of the "
                        "wrong type",
                        k);
    }
    if (!rc && r.p != r.end) rc = bp_err(BP_EINVAL, "denial payload: trailing bytes");
    if (rc) BP_OUT_RESET(out, bp_denial_record);
    return rc;
}
