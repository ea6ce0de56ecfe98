/*
 * JSON forms of payloads (the decoded replay lane): a registered type's JSON
 * form, or a generic rendering of any MessagePack value that has one.
 */
#include "typed/typed_impl.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

/* Deepest nesting decoded from a payload (the top value is at depth 0): jansson's parser takes
 * values 2048 deep, so every text made here reads back as JSON (a reader that parses it, as the
 * CLI does, is not handed text it cannot take). */
#define MSGPACK_MAX_DEPTH 2047

/* ---------------------------------------------------- MessagePack -> JSON */

/* A bounds-checked reader over a MessagePack buffer. */
typedef struct mp_reader {
    const uint8_t *p;
    size_t n;
    size_t at;
} mp_reader;

static bool mp_take(mp_reader *r, size_t k, const uint8_t **bytes) {
    if (r->n - r->at < k) return false;
    *bytes = r->p + r->at;
    r->at += k;
    return true;
}

/* Big-endian unsigned of k bytes (1, 2, 4 or 8). */
static bool mp_uint(mp_reader *r, size_t k, uint64_t *v) {
    const uint8_t *b;
    if (!mp_take(r, k, &b)) return false;
    *v = 0;
    for (size_t i = 0; i < k; i++)
        *v = (*v << 8) | b[i];
    return true;
}

static json_t *mp_value(mp_reader *r, int depth);

static json_t *mp_string(mp_reader *r, size_t len) {
    const uint8_t *b;
    if (!mp_take(r, len, &b)) return NULL;
    return json_stringn((const char *)b, len); /* NULL when not UTF-8 */
}

static json_t *mp_array(mp_reader *r, uint64_t count, int depth) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (uint64_t i = 0; i < count; i++) {
        json_t *item = mp_value(r, depth + 1);
        if (!item || json_array_append_new(a, item) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *mp_map(mp_reader *r, uint64_t count, int depth) {
    json_t *m = json_object();
    if (!m) return NULL;
    for (uint64_t i = 0; i < count; i++) {
        json_t *key = mp_value(r, depth + 1);
        const char *k = key && json_is_string(key) ? json_string_value(key) : NULL;
        /* a key with NUL, or a repeated key, cannot be a JSON object member */
        bool usable = k && strlen(k) == json_string_length(key) && !json_object_get(m, k);
        json_t *item = usable ? mp_value(r, depth + 1) : NULL;
        bool ok = item && json_object_set_new(m, k, item) == 0; /* steals item */
        json_decref(key);
        if (!ok) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

static json_t *mp_float(mp_reader *r, size_t k) {
    uint64_t bits;
    if (!mp_uint(r, k, &bits)) return NULL;
    double d;
    if (k == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        d = f;
    } else {
        memcpy(&d, &bits, sizeof d);
    }
    return isfinite(d) ? json_real(d) : NULL;
}

static json_t *mp_signed(mp_reader *r, size_t k) {
    uint64_t u;
    if (!mp_uint(r, k, &u)) return NULL;
    unsigned shift = (unsigned)(64 - 8 * k);
    int64_t v = (int64_t)(u << shift) >> shift; /* sign-extend */
    return json_integer((json_int_t)v);
}

static json_t *mp_unsigned(mp_reader *r, size_t k) {
    uint64_t u;
    if (!mp_uint(r, k, &u) || u > (uint64_t)INT64_MAX) return NULL;
    return json_integer((json_int_t)u);
}

/* Length-prefixed str / array / map: k is the width of the length. */
static json_t *mp_sized(mp_reader *r, uint8_t tag, size_t k, int depth) {
    uint64_t len;
    if (!mp_uint(r, k, &len)) return NULL;
    if (tag == 0xd9 || tag == 0xda || tag == 0xdb) return mp_string(r, len);
    if (tag == 0xdc || tag == 0xdd) return mp_array(r, len, depth);
    return mp_map(r, len, depth);
}

static json_t *mp_value(mp_reader *r, int depth) {
    const uint8_t *b;
    if (depth > MSGPACK_MAX_DEPTH || !mp_take(r, 1, &b)) return NULL;
    uint8_t t = *b;
    if (t <= 0x7f) return json_integer(t);
    if (t >= 0xe0) return json_integer((int8_t)t);
    if (t >= 0xa0 && t <= 0xbf) return mp_string(r, t & 0x1f);
    if (t >= 0x90 && t <= 0x9f) return mp_array(r, t & 0x0f, depth);
    if (t >= 0x80 && t <= 0x8f) return mp_map(r, t & 0x0f, depth);
    switch (t) {
    case 0xc0:
        return json_null();
    case 0xc2:
        return json_false();
    case 0xc3:
        return json_true();
    case 0xca:
        return mp_float(r, 4);
    case 0xcb:
        return mp_float(r, 8);
    case 0xcc:
        return mp_unsigned(r, 1);
    case 0xcd:
        return mp_unsigned(r, 2);
    case 0xce:
        return mp_unsigned(r, 4);
    case 0xcf:
        return mp_unsigned(r, 8);
    case 0xd0:
        return mp_signed(r, 1);
    case 0xd1:
        return mp_signed(r, 2);
    case 0xd2:
        return mp_signed(r, 4);
    case 0xd3:
        return mp_signed(r, 8);
    case 0xd9:
    case 0xdc:
    case 0xde:
        return mp_sized(r, t, t == 0xd9 ? 1 : 2, depth);
    case 0xda:
        return mp_sized(r, t, 2, depth);
    case 0xdb:
    case 0xdd:
    case 0xdf:
        return mp_sized(r, t, 4, depth);
    default:
        return NULL; /* bin, ext, never-used: no faithful JSON form */
    }
}

json_t *bp_json_from_msgpack(const uint8_t *p, size_t n) {
    mp_reader r = {p, n, 0};
    if (!p || n == 0) return NULL;
    json_t *v = mp_value(&r, 0);
    if (v && r.at != n) { /* trailing bytes: not one value */
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---------------------------------------------------- JSON -> MessagePack */

/* 0, or not 0 when the buffer could not grow (msgpack-c's packers say so). */
static int pack_json(msgpack_packer *pk, const json_t *v) {
    int e = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        e = msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, key, item) {
            if (!e) e = msgpack_pack_str_with_body(pk, key, strlen(key));
            if (!e) e = pack_json(pk, item);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        e = msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, item) if (!e) e = pack_json(pk, item);
        break;
    }
    case JSON_STRING:
        e = msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: /* (the shortest form of the value) */
        e = msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        e = msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        e = msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        e = msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        e = msgpack_pack_nil(pk);
        break;
    }
    return e;
}

bp_status bp_json_to_msgpack(uint8_t **out, size_t *out_len, const char *json, size_t len) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!json || !out || !out_len) return bp_err(BP_EINVAL, "bp_json_to_msgpack: NULL argument");
    size_t blank = 0;
    while (blank < len && strchr(" \t\r\n", json[blank]) && json[blank])
        blank++;
    if (blank == len)
        return bp_err(BP_EINVAL,
                      "bp_json_to_msgpack: empty; expected a JSON value such as {} or null");
    json_error_t err;
    json_t *v =
        json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!v)
        return bp_err(BP_EINVAL, "bp_json_to_msgpack: invalid JSON at line %d column %d: %s",
                      err.line, err.column, err.text);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int e = pack_json(&pk, v);
    json_decref(v);
    if (e) {
        msgpack_sbuffer_destroy(&sb);
        return bp_err(BP_ENOMEM, "bp_json_to_msgpack: out of memory");
    }
    *out = (uint8_t *)sb.data; /* (malloc'd: bp_free frees it) */
    *out_len = sb.size;
    return BP_OK;
}

/* ------------------------------------------------------------ typed values */

static json_t *scalar_json(unsigned type, const uint8_t *p) {
    switch (type) {
    case BP_FT_BOOL: {
        bool b;
        memcpy(&b, p, sizeof b);
        return json_boolean(b);
    }
#define INT_JSON(T, ctype)                                                                         \
    case T: {                                                                                      \
        ctype v;                                                                                   \
        memcpy(&v, p, sizeof v);                                                                   \
        return json_integer((json_int_t)v);                                                        \
    }
        INT_JSON(BP_FT_I8, int8_t)
        INT_JSON(BP_FT_I16, int16_t)
        INT_JSON(BP_FT_I32, int32_t)
        INT_JSON(BP_FT_I64, int64_t)
        INT_JSON(BP_FT_U8, uint8_t)
        INT_JSON(BP_FT_U16, uint16_t)
        INT_JSON(BP_FT_U32, uint32_t)
#undef INT_JSON
    case BP_FT_U64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
        char text[24];
        snprintf(text, sizeof text, "%llu", (unsigned long long)v);
        return json_string(text);
    }
    default: {
        double d;
        if (type == BP_FT_F32) {
            float f;
            memcpy(&f, p, sizeof f);
            d = f;
        } else {
            memcpy(&d, p, sizeof d);
        }
        if (isfinite(d)) return json_real(d);
        return json_string(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    }
    }
}

static json_t *field_json(const bp_type *t, const bp_field *f, const uint8_t *v) {
    const uint8_t *p = v + f->off;
    uint32_t n;
    if (f->type == BP_FT_STR) {
        size_t len = strnlen((const char *)p, (size_t)f->n + 1);
        if (len > f->n) {
            bp_err(BP_EINVAL, "json '%s': field '%s': not NUL-terminated within %u bytes", t->name,
                   f->name, f->n);
            return NULL;
        }
        json_t *s = json_stringn((const char *)p, len);
        if (!s) bp_err(BP_EINVAL, "json '%s': field '%s': not valid UTF-8", t->name, f->name);
        return s;
    }
    if (f->type == BP_FT_BYTES) {
        memcpy(&n, v + f->len_off, sizeof n);
        if (n > f->n) {
            bp_err(BP_EINVAL, "json '%s': field '%s': length %u exceeds its bound", t->name,
                   f->name, n);
            return NULL;
        }
        char *hex = malloc(2 * (size_t)n + 1);
        if (!hex) return NULL;
        bp_hex_encode(p, n, hex);
        json_t *s = json_stringn(hex, 2 * (size_t)n);
        free(hex);
        return s;
    }
    if (f->shape == BP_FS_ARR) {
        memcpy(&n, v + f->aux_off, sizeof n);
        if (n > f->n) {
            bp_err(BP_EINVAL, "json '%s': field '%s': count %u exceeds its bound", t->name, f->name,
                   n);
            return NULL;
        }
        json_t *a = json_array();
        for (uint32_t k = 0; a && k < n; k++)
            if (json_array_append_new(
                    a, scalar_json(f->type, p + k * bp_field_scalar_size(f->type)))) {
                json_decref(a);
                a = NULL;
            }
        return a;
    }
    return scalar_json(f->type, p);
}

bp_status bp_type_json_value(const bp_type *t, const void *value, json_t **out) {
    *out = NULL;
    bp_status rc = bp_type_check(t);
    if (rc) return rc;
    const bp_field *fs = bp_type_fields(t);
    const uint8_t *v = value;
    json_t *o = json_object();
    if (!o) return bp_err(BP_ENOMEM, "json: out of memory");
    for (size_t i = 0; i < t->n_fields; i++) {
        const bp_field *f = &fs[i];
        if (f->shape == BP_FS_OPT) {
            bool has;
            memcpy(&has, v + f->aux_off, sizeof has);
            if (!has) continue;
        }
        bp_err_clear();
        json_t *fv = field_json(t, f, v);
        if (!fv || json_object_set_new(o, f->name, fv)) {
            json_decref(o);
            return bp_last_error()[0] ? BP_EINVAL : bp_err(BP_ENOMEM, "json: out of memory");
        }
    }
    *out = o;
    return BP_OK;
}

static bp_status dump(json_t *v, char **json) {
    *json = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(v);
    return *json ? BP_OK : bp_err(BP_ENOMEM, "json: out of memory");
}

bp_status bp_type_to_json(const bp_type *t, char **json, const void *value) {
    if (!value || !json) return bp_err(BP_EINVAL, "bp_type_to_json: NULL argument");
    *json = NULL;
    json_t *v;
    bp_status rc = bp_type_json_value(t, value, &v);
    return rc ? rc : dump(v, json);
}

/* ev's payload decoded as type t (a stored one, at the event's version) as JSON. */
static bp_status typed_value(const bp_type *t, const bp_event *ev, json_t **out) {
    void *val = malloc(t->size);
    if (!val) return bp_err(BP_ENOMEM, "json: out of memory");
    bp_status rc = bp_type_decode_checked(t, ev->payload, ev->payload_len, val);
    if (!rc) rc = bp_type_json_value(t, val, out);
    free(val);
    return rc;
}

bp_status bp_event_json_value(bp_store *s, const bp_event *ev, json_t **out) {
    if (!out) return bp_err(BP_EINVAL, "bp_event_json_value: out is NULL");
    *out = NULL;
    if (!ev) return bp_err(BP_EINVAL, "bp_event_json_value: ev is NULL");
    if (ev->header_only || (ev->payload_len && !ev->payload))
        return bp_err(BP_EINVAL, "json: event %llu was read without its payload",
                      (unsigned long long)ev->global_seq);
    const bp_kindreg *k = s ? bp_registry_find(bp_typed_of(s)->reg, ev->kind) : NULL;
    if (k) {
        void *val = malloc(k->type->size);
        if (!val) return bp_err(BP_ENOMEM, "json: out of memory");
        bp_status rc = bp_event_decode(s, val, ev, k->type);
        if (!rc) rc = bp_type_json_value(k->type, val, out);
        free(val);
        return rc;
    }
    if (ev->payload_len == 0) {
        *out = json_null();
        return BP_OK;
    }
    if (s && ev->kind != BP_KIND_SYSTEM_SCHEMA) { /* a type the store holds for its kind */
        bp_schemas *l;
        bp_status rc = bp_schemas_lock(s, &l);
        if (rc) return rc;
        unsigned v = BP_EVENT_SCHEMA_VERSION(ev->flags);
        const bp_type *st = bp_schemas_find(l, ev->kind, v);
        if (st) rc = typed_value(st, ev, out);
        bp_schemas_unlock(s);
        if (st) return rc;
    }
    *out = bp_json_from_msgpack(ev->payload, ev->payload_len);
    if (!*out)
        return bp_err(BP_EINVAL,
                      "json: the payload of event %llu is not MessagePack with a JSON form "
                      "(bin, ext, non-UTF-8 text, a non-string or repeated map key, or malformed)",
                      (unsigned long long)ev->global_seq);
    return BP_OK;
}

bp_status bp_event_json(bp_store *s, char **json, const bp_event *ev) {
    if (!json) return bp_err(BP_EINVAL, "bp_event_json: json is NULL");
    *json = NULL;
    json_t *v;
    bp_status rc = bp_event_json_value(s, ev, &v);
    return rc ? rc : dump(v, json);
}
