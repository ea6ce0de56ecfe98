/* JSON for the CLI: JSON <-> MessagePack payloads, events and receipts as JSON. */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting decoded from a payload; jansson refuses deeper JSON input anyway. */
#define MSGPACK_MAX_DEPTH 2048

/* ---------------------------------------------------------------- building */

void cli_json_set(json_t *obj, const char *key, json_t *value) {
    if (!value || json_object_set_new(obj, key, value) != 0) cli_oom();
}

json_t *cli_json_u64(uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    return json_string(text);
}

json_t *cli_json_id(const bp_id *id) {
    char text[37];
    bp_id_format(id, text);
    return json_string(text);
}

json_t *cli_json_hash(const bp_hash *h) {
    char text[65];
    bp_hash_format(h, text);
    return json_string(text);
}

json_t *cli_json_hex(const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char *text = malloc(2 * n + 1);
    if (!text) cli_oom();
    for (size_t i = 0; i < n; i++) {
        text[2 * i] = digits[p[i] >> 4];
        text[2 * i + 1] = digits[p[i] & 15];
    }
    json_t *v = json_stringn(text, 2 * n);
    free(text);
    return v;
}

json_t *cli_json_text(const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    if (v) return v;
    /* not UTF-8: keep ASCII, show every other byte as \xNN */
    char *text = malloc(4 * n + 1);
    if (!text) cli_oom();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            text[k++] = (char)ch;
        else
            k += (size_t)snprintf(text + k, 5, "\\x%02x", ch);
    }
    v = json_stringn(text, k);
    free(text);
    return v;
}

void cli_print_json(json_t *v) {
    if (!v) cli_oom();
    json_dumpf(v, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    json_decref(v);
}

/* ---------------------------------------------------- JSON -> MessagePack */

void cli_json_to_msgpack(const json_t *v, msgpack_sbuffer *out) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        msgpack_pack_map(&pk, json_object_size(v));
        json_object_foreach((json_t *)v, key, item) {
            size_t kl = strlen(key);
            msgpack_pack_str_with_body(&pk, key, kl);
            cli_json_to_msgpack(item, out);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        msgpack_pack_array(&pk, json_array_size(v));
        json_array_foreach(v, i, item) cli_json_to_msgpack(item, out);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str_with_body(&pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(&pk, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(&pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(&pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(&pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(&pk);
        break;
    }
}

int cli_json_text_to_msgpack(const cli_ctx *c, const char *where, const char *text, size_t len,
                             msgpack_sbuffer *out) {
    if (strspn(text, " \t\r\n") >= len)
        return cli_fail(c, CLI_EUSAGE, "%s: empty; expected a JSON value such as {} or null",
                        where);
    json_error_t err;
    json_t *v =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!v)
        return cli_fail(c, CLI_EUSAGE, "%s: invalid JSON at line %d column %d: %s", where, err.line,
                        err.column, err.text);
    cli_json_to_msgpack(v, out);
    json_decref(v);
    return CLI_OK;
}

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
    if (!a) cli_oom();
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
    if (!m) cli_oom();
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

json_t *cli_msgpack_to_json(const uint8_t *p, size_t n) {
    mp_reader r = {p, n, 0};
    if (!p || n == 0) return NULL;
    json_t *v = mp_value(&r, 0);
    if (v && r.at != n) { /* trailing bytes: not one value */
        json_decref(v);
        return NULL;
    }
    return v;
}

void cli_json_set_payload(json_t *obj, const uint8_t *p, size_t n) {
    json_t *v = cli_msgpack_to_json(p, n);
    if (v)
        cli_json_set(obj, "payload", v);
    else
        cli_json_set(obj, "payload_hex", cli_json_hex(p, n));
}

/* ------------------------------------------------------ events, receipts */

json_t *cli_event_json(const bp_event *ev) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "event_id", cli_json_id(&ev->event_id));
    cli_json_set(o, "entity", cli_json_text(ev->entity, strlen(ev->entity)));
    cli_json_set(o, "scope", cli_json_text(ev->scope, strlen(ev->scope)));
    cli_json_set(o, "kind", json_integer(ev->kind));
    cli_json_set(o, "global_seq", cli_json_u64(ev->global_seq));
    cli_json_set(o, "clock", cli_json_u64(ev->clock));
    cli_json_set(o, "hlc", cli_json_u64(ev->hlc));
    cli_json_set(o, "prev_hash", cli_json_hash(&ev->prev_hash));
    cli_json_set(o, "event_hash", cli_json_hash(&ev->event_hash));
    cli_json_set(o, "correlation_id", cli_json_id(&ev->correlation_id));
    cli_json_set(o, "causation_id",
                 ev->has_causation ? cli_json_id(&ev->causation_id) : json_null());
    if (!ev->header_only) cli_json_set_payload(o, ev->payload, ev->payload_len);
    return o;
}

json_t *cli_receipt_json(const bp_receipt *r) {
    char *text;
    if (bp_receipt_to_json(r, &text)) cli_oom(); /* an append's receipt always encodes */
    json_t *o = json_loads(text, 0, NULL);
    bp_free(text);
    if (!o) cli_oom();
    return o;
}
