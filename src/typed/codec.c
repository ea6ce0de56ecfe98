/*
 * Typed payload codec: a bp_type's field table drives one MessagePack encoder
 * and one strict decoder (doc/FORMAT.md "Typed payloads").
 */
#include "core/core.h"
#include "format/mp.h"
#include "typed/typed_impl.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ descriptors */

static const char *const type_names[] = {"?",       "bool",    "int8",   "int16",  "int32",
                                         "int64",   "uint8",   "uint16", "uint32", "uint64",
                                         "float32", "float64", "string", "bytes"};

const char *bp_field_type_name(unsigned type) {
    return type <= BP_FT_BYTES ? type_names[type] : "?";
}

size_t bp_field_scalar_size(unsigned type) {
    switch (type) {
    case BP_FT_BOOL:
        return sizeof(bool);
    case BP_FT_I8:
    case BP_FT_U8:
        return 1;
    case BP_FT_I16:
    case BP_FT_U16:
        return 2;
    case BP_FT_I32:
    case BP_FT_U32:
    case BP_FT_F32:
        return 4;
    default:
        return 8;
    }
}

/* Largest encoding of one value of a field's type (one element for ARR). */
static size_t value_max(const bp_field *f) {
    switch (f->type) {
    case BP_FT_BOOL:
        return 1;
    case BP_FT_F32:
        return 5;
    case BP_FT_STR:
    case BP_FT_BYTES:
        return 5 + (size_t)f->n;
    default:
        return 9;
    }
}

#define BP_FIELD_BOUND_MAX (16u << 20)

bp_status bp_type_check(const bp_type *t) {
    if (!t) return bp_err(BP_EINVAL, "payload type: NULL descriptor");
    BP_SIZE_CHECK("payload type", t, bp_type, BP_TYPE_DEFINE);
    size_t nl = t->name ? strnlen(t->name, 256) : 0;
    if (nl == 0 || nl > 255) return bp_err(BP_EINVAL, "payload type: name must be 1..255 bytes");
    if (!bp_kind_is_application(t->kind))
        return bp_err(BP_EINVAL, "payload type '%s': kind 0x%04x is not an application kind",
                      t->name, t->kind);
    if (t->version == 0)
        return bp_err(BP_EINVAL, "payload type '%s': schema version must be 1..255", t->name);
    if (t->size == 0) return bp_err(BP_EINVAL, "payload type '%s': size is 0", t->name);
    if (t->n_fields > BP_TYPE_FIELDS_MAX)
        return bp_err(BP_EINVAL, "payload type '%s': %zu fields (at most %d)", t->name, t->n_fields,
                      BP_TYPE_FIELDS_MAX);
    const bp_field *fs = bp_type_fields(t);
    if (t->n_fields && !fs) return bp_err(BP_EINVAL, "payload type '%s': no field table", t->name);
    for (size_t i = 0; i < t->n_fields; i++) {
        const bp_field *f = &fs[i];
        size_t fl = f->name ? strnlen(f->name, 256) : 0;
        if (fl == 0 || fl > 255)
            return bp_err(BP_EINVAL, "payload type '%s': field %zu: name must be 1..255 bytes",
                          t->name, i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(fs[k].name, f->name) == 0)
                return bp_err(BP_EINVAL, "payload type '%s': field '%s' declared twice", t->name,
                              f->name);
        if (f->type < BP_FT_BOOL || f->type > BP_FT_BYTES || f->shape < BP_FS_ONE ||
            f->shape > BP_FS_ARR)
            return bp_err(BP_EINVAL, "payload type '%s': field '%s': unknown type or shape",
                          t->name, f->name);
        bool raw = f->type == BP_FT_STR || f->type == BP_FT_BYTES;
        if (f->shape == BP_FS_ARR && raw)
            return bp_err(BP_EINVAL,
                          "payload type '%s': field '%s': arrays of %s are not supported", t->name,
                          f->name, bp_field_type_name(f->type));
        if ((raw || f->shape == BP_FS_ARR) && (f->n == 0 || f->n > BP_FIELD_BOUND_MAX))
            return bp_err(BP_EINVAL, "payload type '%s': field '%s': bound %u out of range 1..%u",
                          t->name, f->name, f->n, BP_FIELD_BOUND_MAX);
        size_t span = f->type == BP_FT_STR     ? (size_t)f->n + 1
                      : f->type == BP_FT_BYTES ? f->n
                      : f->shape == BP_FS_ARR  ? (size_t)f->n * bp_field_scalar_size(f->type)
                                               : bp_field_scalar_size(f->type);
        bool bad = f->off > t->size || t->size - f->off < span;
        if (f->shape == BP_FS_OPT) bad |= f->aux_off + sizeof(bool) > t->size;
        if (f->shape == BP_FS_ARR) bad |= f->aux_off + sizeof(uint32_t) > t->size;
        if (f->type == BP_FT_BYTES) bad |= f->len_off + sizeof(uint32_t) > t->size;
        if (bad)
            return bp_err(BP_EINVAL,
                          "payload type '%s': field '%s' lies outside the %zu-byte struct", t->name,
                          f->name, t->size);
    }
    return BP_OK;
}

size_t bp_type_encoded_max(const bp_type *t) {
    if (!t || bp_type_check(t)) return 0;
    const bp_field *fs = bp_type_fields(t);
    size_t n = 5;
    for (size_t i = 0; i < t->n_fields; i++) {
        const bp_field *f = &fs[i];
        size_t kl = strlen(f->name);
        n += (kl < 32 ? 1 : 2) + kl;
        n += f->shape == BP_FS_ARR ? 5 + (size_t)f->n * value_max(f) : value_max(f);
    }
    return n;
}

/* ---------------------------------------------------------------- encoder */

/* Writes up to cap bytes and counts all of them: n > cap means it did not fit. */
typedef struct wr {
    uint8_t *p;
    size_t n, cap;
} wr;

static void put(wr *w, const void *src, size_t k) {
    if (w->n <= w->cap && w->cap - w->n >= k) memcpy(w->p + w->n, src, k);
    w->n += k;
}

static void put_tagged(wr *w, uint8_t tag, uint64_t v, size_t k) {
    uint8_t b[9];
    b[0] = tag;
    for (size_t i = 0; i < k; i++)
        b[1 + i] = (uint8_t)(v >> (8 * (k - 1 - i)));
    put(w, b, 1 + k);
}

static void w_uint(wr *w, uint64_t v) {
    if (v < 0x80)
        put_tagged(w, (uint8_t)v, 0, 0);
    else if (v <= 0xff)
        put_tagged(w, 0xcc, v, 1);
    else if (v <= 0xffff)
        put_tagged(w, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        put_tagged(w, 0xce, v, 4);
    else
        put_tagged(w, 0xcf, v, 8);
}

static void w_int(wr *w, int64_t v) {
    if (v >= 0)
        w_uint(w, (uint64_t)v);
    else if (v >= -32)
        put_tagged(w, (uint8_t)(int8_t)v, 0, 0);
    else if (v >= INT8_MIN)
        put_tagged(w, 0xd0, (uint8_t)(int8_t)v, 1);
    else if (v >= INT16_MIN)
        put_tagged(w, 0xd1, (uint16_t)(int16_t)v, 2);
    else if (v >= INT32_MIN)
        put_tagged(w, 0xd2, (uint32_t)(int32_t)v, 4);
    else
        put_tagged(w, 0xd3, (uint64_t)v, 8);
}

/* Header of a str (str = true), bin, array or map of n items. */
static void w_head(wr *w, uint8_t fix, uint8_t fixmax, uint8_t t8, uint8_t t16, uint64_t n) {
    if (fix && n <= fixmax)
        put_tagged(w, (uint8_t)(fix | n), 0, 0);
    else if (t8 && n <= 0xff)
        put_tagged(w, t8, n, 1);
    else if (n <= 0xffff)
        put_tagged(w, t16, n, 2);
    else
        put_tagged(w, (uint8_t)(t16 + 1), n, 4);
}

static void w_str(wr *w, const void *s, size_t n) {
    w_head(w, 0xa0, 31, 0xd9, 0xda, n);
    put(w, s, n);
}

/* Encode one scalar (not STR/BYTES) at p. */
static void w_scalar(wr *w, unsigned type, const uint8_t *p) {
    switch (type) {
    case BP_FT_BOOL: {
        bool b;
        memcpy(&b, p, sizeof b);
        put_tagged(w, b ? 0xc3 : 0xc2, 0, 0);
        break;
    }
#define INT_CASE(T, ctype, fn)                                                                     \
    case T: {                                                                                      \
        ctype v;                                                                                   \
        memcpy(&v, p, sizeof v);                                                                   \
        fn(w, v);                                                                                  \
        break;                                                                                     \
    }
        INT_CASE(BP_FT_I8, int8_t, w_int)
        INT_CASE(BP_FT_I16, int16_t, w_int)
        INT_CASE(BP_FT_I32, int32_t, w_int)
        INT_CASE(BP_FT_I64, int64_t, w_int)
        INT_CASE(BP_FT_U8, uint8_t, w_uint)
        INT_CASE(BP_FT_U16, uint16_t, w_uint)
        INT_CASE(BP_FT_U32, uint32_t, w_uint)
        INT_CASE(BP_FT_U64, uint64_t, w_uint)
#undef INT_CASE
    case BP_FT_F32: {
        uint32_t bits;
        memcpy(&bits, p, 4);
        put_tagged(w, 0xca, bits, 4);
        break;
    }
    default: { /* BP_FT_F64 */
        uint64_t bits;
        memcpy(&bits, p, 8);
        put_tagged(w, 0xcb, bits, 8);
        break;
    }
    }
}

static bool field_present(const bp_field *f, const uint8_t *v) {
    if (f->shape != BP_FS_OPT) return true;
    bool has;
    memcpy(&has, v + f->aux_off, sizeof has);
    return has;
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

bp_status bp_type_encode(const bp_type *t, uint8_t *buf, size_t cap, size_t *len,
                         const void *value) {
    if (!value || !len || (cap && !buf)) return bp_err(BP_EINVAL, "bp_type_encode: NULL argument");
    bp_status rc = bp_type_check(t);
    if (rc) return rc;
    const bp_field *fs = bp_type_fields(t);
    const uint8_t *v = value;
    wr w = {buf, 0, cap};
    size_t present = 0;
    for (size_t i = 0; i < t->n_fields; i++)
        present += field_present(&fs[i], v);
    w_head(&w, 0x80, 15, 0, 0xde, present);
    for (size_t i = 0; i < t->n_fields; i++) {
        const bp_field *f = &fs[i];
        if (!field_present(f, v)) continue;
        w_str(&w, f->name, strlen(f->name));
        const uint8_t *p = v + f->off;
        if (f->type == BP_FT_STR) {
            size_t n = strnlen((const char *)p, (size_t)f->n + 1);
            if (n > f->n)
                return bp_err(BP_EINVAL,
                              "encode '%s': field '%s': not NUL-terminated within %u bytes",
                              t->name, f->name, f->n);
            if (!bp_utf8_valid(p, n))
                return bp_err(BP_EINVAL, "encode '%s': field '%s': not valid UTF-8", t->name,
                              f->name);
            w_str(&w, p, n);
        } else if (f->type == BP_FT_BYTES) {
            uint32_t n = get_u32(v + f->len_off);
            if (n > f->n)
                return bp_err(BP_EINVAL, "encode '%s': field '%s': %s_len %u exceeds its bound %u",
                              t->name, f->name, f->name, n, f->n);
            w_head(&w, 0, 0, 0xc4, 0xc5, n);
            put(&w, p, n);
        } else if (f->shape == BP_FS_ARR) {
            uint32_t n = get_u32(v + f->aux_off);
            if (n > f->n)
                return bp_err(BP_EINVAL,
                              "encode '%s': field '%s': %s_count %u exceeds its bound %u", t->name,
                              f->name, f->name, n, f->n);
            w_head(&w, 0x90, 15, 0, 0xdc, n);
            size_t es = bp_field_scalar_size(f->type);
            for (uint32_t k = 0; k < n; k++)
                w_scalar(&w, f->type, p + k * es);
        } else {
            w_scalar(&w, f->type, p);
        }
    }
    *len = w.n;
    if (w.n > cap)
        return bp_err(BP_ETOOBIG, "encode '%s': needs %zu bytes, the buffer has %zu", t->name, w.n,
                      cap);
    return BP_OK;
}

/* ---------------------------------------------------------------- decoder */

typedef struct dec {
    const bp_type *t;
    const uint8_t *base;
    bp_mp_rd r;
} dec;

static bp_status dec_fail(const dec *d, const bp_field *f, const char *what) {
    size_t at = (size_t)(d->r.p - d->base);
    if (f)
        return bp_err(BP_EINVAL, "decode '%s' v%u: field '%s' at offset %zu: %s", d->t->name,
                      d->t->version, f->name, at, what);
    return bp_err(BP_EINVAL, "decode '%s' v%u at offset %zu: %s", d->t->name, d->t->version, at,
                  what);
}

static bool r_float(bp_mp_rd *r, double *out) {
    if (bp_mp_float(r, out)) return true;
    const uint8_t *save = r->p;
    int64_t i;
    if (bp_mp_int(r, INT64_MIN, INT64_MAX, &i)) {
        *out = (double)i;
        return true;
    }
    r->p = save;
    uint64_t u;
    if (bp_mp_uint(r, UINT64_MAX, &u)) {
        *out = (double)u;
        return true;
    }
    return false;
}

/* Decode one scalar into p; false if the value is not of the type or out of range. */
static bool r_scalar(bp_mp_rd *r, unsigned type, uint8_t *p) {
    int64_t i;
    uint64_t u;
    double d;
    switch (type) {
    case BP_FT_BOOL: {
        bool b;
        if (!bp_mp_bool(r, &b)) return false;
        memcpy(p, &b, sizeof b);
        return true;
    }
#define SINT_CASE(T, ctype, lo, hi)                                                                \
    case T: {                                                                                      \
        if (!bp_mp_int(r, lo, hi, &i)) return false;                                               \
        ctype v = (ctype)i;                                                                        \
        memcpy(p, &v, sizeof v);                                                                   \
        return true;                                                                               \
    }
#define UINT_CASE(T, ctype, hi)                                                                    \
    case T: {                                                                                      \
        if (!bp_mp_uint(r, hi, &u)) return false;                                                  \
        ctype v = (ctype)u;                                                                        \
        memcpy(p, &v, sizeof v);                                                                   \
        return true;                                                                               \
    }
        SINT_CASE(BP_FT_I8, int8_t, INT8_MIN, INT8_MAX)
        SINT_CASE(BP_FT_I16, int16_t, INT16_MIN, INT16_MAX)
        SINT_CASE(BP_FT_I32, int32_t, INT32_MIN, INT32_MAX)
        SINT_CASE(BP_FT_I64, int64_t, INT64_MIN, INT64_MAX)
        UINT_CASE(BP_FT_U8, uint8_t, UINT8_MAX)
        UINT_CASE(BP_FT_U16, uint16_t, UINT16_MAX)
        UINT_CASE(BP_FT_U32, uint32_t, UINT32_MAX)
        UINT_CASE(BP_FT_U64, uint64_t, UINT64_MAX)
#undef SINT_CASE
#undef UINT_CASE
    case BP_FT_F32: {
        if (!r_float(r, &d)) return false;
        float f = (float)d;
        memcpy(p, &f, sizeof f);
        return true;
    }
    default: /* BP_FT_F64 */
        if (!r_float(r, &d)) return false;
        memcpy(p, &d, sizeof d);
        return true;
    }
}

static bp_status dec_field(dec *d, const bp_field *f, uint8_t *v) {
    uint8_t *p = v + f->off;
    const uint8_t *data;
    size_t n;
    char what[96];
    if (f->type == BP_FT_STR || f->type == BP_FT_BYTES) {
        bool str = f->type == BP_FT_STR;
        const uint8_t *at = d->r.p;
        if (!bp_mp_raw(&d->r, str, 0, f->n, &data, &n)) {
            d->r.p = at;
            snprintf(what, sizeof what, "expected %s of at most %u bytes",
                     str ? "a string" : "bytes (bin)", f->n);
            return dec_fail(d, f, what);
        }
        if (str && !bp_utf8_valid(data, n)) {
            d->r.p = at;
            return dec_fail(d, f, "string is not valid UTF-8");
        }
        if (str && memchr(data, 0, n)) { /* the struct holds a C string */
            d->r.p = at;
            return dec_fail(d, f, "string contains a NUL byte");
        }
        memcpy(p, data, n);
        if (str)
            p[n] = 0;
        else {
            uint32_t n32 = (uint32_t)n;
            memcpy(v + f->len_off, &n32, sizeof n32);
        }
        return BP_OK;
    }
    if (f->shape == BP_FS_ARR) {
        uint32_t count;
        const uint8_t *at = d->r.p;
        if (!bp_mp_count(&d->r, false, f->n, &count)) {
            d->r.p = at;
            snprintf(what, sizeof what, "expected an array of at most %u %s", f->n,
                     bp_field_type_name(f->type));
            return dec_fail(d, f, what);
        }
        size_t es = bp_field_scalar_size(f->type);
        for (uint32_t k = 0; k < count; k++) {
            at = d->r.p;
            if (!r_scalar(&d->r, f->type, p + k * es)) {
                d->r.p = at;
                snprintf(what, sizeof what, "element %u: expected %s", k,
                         bp_field_type_name(f->type));
                return dec_fail(d, f, what);
            }
        }
        memcpy(v + f->aux_off, &count, sizeof count);
        return BP_OK;
    }
    const uint8_t *at = d->r.p;
    if (!r_scalar(&d->r, f->type, p)) {
        d->r.p = at;
        snprintf(what, sizeof what, "expected %s", bp_field_type_name(f->type));
        return dec_fail(d, f, what);
    }
    return BP_OK;
}

bp_status bp_type_decode(const bp_type *t, void *out, const void *payload, size_t len) {
    if (!out || (len && !payload)) return bp_err(BP_EINVAL, "bp_type_decode: NULL argument");
    bp_status rc = bp_type_check(t);
    return rc ? rc : bp_type_decode_checked(t, payload, len, out);
}

bp_status bp_type_decode_checked(const bp_type *t, const void *payload, size_t len, void *out) {
    bp_status rc;
    memset(out, 0, t->size);
    const bp_field *fs = bp_type_fields(t);
    dec d = {t, payload, {payload, (const uint8_t *)payload + len}};
    uint32_t nk;
    if (!bp_mp_count(&d.r, true, BP_TYPE_FIELDS_MAX, &nk)) {
        d.r.p = d.base;
        return dec_fail(&d, NULL, "expected a map of field names to values");
    }
    uint64_t seen[BP_TYPE_FIELDS_MAX / 64] = {0};
    size_t hint = 0;
    uint8_t *v = out;
    for (uint32_t i = 0; i < nk; i++) {
        const uint8_t *key;
        size_t kl;
        const uint8_t *at = d.r.p;
        if (!bp_mp_raw(&d.r, true, 1, 255, &key, &kl)) {
            d.r.p = at;
            return dec_fail(&d, NULL, "expected a field name (a string of 1..255 bytes)");
        }
        size_t k = hint < t->n_fields ? hint : 0, tried = 0;
        while (tried < t->n_fields &&
               (strlen(fs[k].name) != kl || memcmp(fs[k].name, key, kl) != 0)) {
            k = k + 1 == t->n_fields ? 0 : k + 1;
            tried++;
        }
        if (tried == t->n_fields) {
            d.r.p = at;
            char what[300];
            snprintf(what, sizeof what, "unknown field '%.*s'", (int)kl, (const char *)key);
            return dec_fail(&d, NULL, what);
        }
        const bp_field *f = &fs[k];
        if (seen[k / 64] >> (k % 64) & 1) {
            d.r.p = at;
            return dec_fail(&d, f, "appears twice");
        }
        seen[k / 64] |= (uint64_t)1 << (k % 64);
        hint = k + 1;
        if (f->shape == BP_FS_OPT && bp_mp_nil(&d.r)) continue; /* nil: absent */
        if ((rc = dec_field(&d, f, v))) return rc;
        if (f->shape == BP_FS_OPT) {
            bool has = true;
            memcpy(v + f->aux_off, &has, sizeof has);
        }
    }
    for (size_t k = 0; k < t->n_fields; k++)
        if (fs[k].shape != BP_FS_OPT && !(seen[k / 64] >> (k % 64) & 1))
            return dec_fail(&d, &fs[k], "missing");
    if (d.r.p != d.r.end) return dec_fail(&d, NULL, "trailing bytes after the map");
    return BP_OK;
}
