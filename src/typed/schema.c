/*
 * Stored schemas (doc/FORMAT.md "Stored schemas"): payload type descriptors recorded in the
 * store itself, as SYSTEM_SCHEMA events of the entity batpak:schema, so that every process
 * and language reads typed payloads as the program that declared them (bp_event_json, the
 * CLI, the Python binding), whichever version an event was written with.
 *
 * A stored descriptor becomes a type of this library (bp_stored_type): the fields with a
 * struct layout computed here (natural alignment), checked by bp_type_check like a declared
 * type's, so the codec decodes and renders with it unchanged. Invariants: a handle's list is
 * the descriptors of the events of batpak:schema up to clock (in their order), each valid;
 * an entry never changes or goes away while the handle lives (readers keep pointers).
 */
#include "typed/typed_impl.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

#define SCHEMA_ENTITY "batpak:schema"

const bp_field *bp__stored_fields(void) {
    return NULL; /* a marker (bp_type_fields): never called for a stored type */
}

static const char *const shape_names[] = {"?", "one", "opt", "arr"};

/* ------------------------------------------------------------ descriptors as bytes */

static int pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/* The payload of t's SYSTEM_SCHEMA event: a map {name, kind, version, fields: [{name, type,
 * shape, n}]} (type and shape by name: "int64", "opt"...). */
static bp_status encode_descriptor(const bp_type *t, msgpack_sbuffer *sb) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    const bp_field *fs = bp_type_fields(t);
    int e = msgpack_pack_map(&pk, 4) || pack_str(&pk, "name") || pack_str(&pk, t->name) ||
            pack_str(&pk, "kind") || msgpack_pack_uint16(&pk, t->kind) ||
            pack_str(&pk, "version") || msgpack_pack_uint8(&pk, t->version) ||
            pack_str(&pk, "fields") || msgpack_pack_array(&pk, t->n_fields);
    for (size_t i = 0; !e && i < t->n_fields; i++)
        e = msgpack_pack_map(&pk, 4) || pack_str(&pk, "name") || pack_str(&pk, fs[i].name) ||
            pack_str(&pk, "type") || pack_str(&pk, bp_field_type_name(fs[i].type)) ||
            pack_str(&pk, "shape") || pack_str(&pk, shape_names[fs[i].shape]) ||
            pack_str(&pk, "n") || msgpack_pack_uint32(&pk, fs[i].n);
    return e ? bp_err(BP_ENOMEM, "bp_schema_record: out of memory") : BP_OK;
}

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 1; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return 0;
}

static void stored_free(bp_stored_type *st) {
    if (!st) return;
    for (size_t i = 0; i < st->t.n_fields; i++)
        free((char *)st->fs[i].name);
    free(st->fs);
    free((char *)st->t.name);
    free(st);
}

static size_t align_to(size_t off, size_t a) {
    return (off + a - 1) / a * a;
}

/* Lay field f out at the end of a struct of *size bytes. */
static void place(bp_field *f, size_t *size) {
    size_t sc = f->type == BP_FT_STR || f->type == BP_FT_BYTES ? 1 : bp_field_scalar_size(f->type);
    size_t off = *size;
    if (f->shape == BP_FS_OPT) {
        f->aux_off = off;
        off += sizeof(bool);
    } else if (f->shape == BP_FS_ARR) {
        off = align_to(off, sizeof(uint32_t));
        f->aux_off = off;
        off += sizeof(uint32_t);
    }
    if (f->type == BP_FT_BYTES) {
        off = align_to(off, sizeof(uint32_t));
        f->len_off = off;
        off += sizeof(uint32_t);
    }
    off = align_to(off, sc);
    f->off = off;
    off += f->type == BP_FT_STR     ? (size_t)f->n + 1
           : f->type == BP_FT_BYTES ? f->n
           : f->shape == BP_FS_ARR  ? (size_t)f->n * sc
                                    : sc;
    *size = off;
}

/* A stored descriptor's JSON form (decoded from its payload) as a type: NULL with the error
 * set when it is not a valid descriptor. */
static bp_stored_type *from_json(const json_t *d, const char *where) {
    const json_t *jn = json_object_get(d, "name"), *jk = json_object_get(d, "kind"),
                 *jv = json_object_get(d, "version"), *jf = json_object_get(d, "fields");
    if (!json_is_object(d) || json_object_size(d) != 4 || !json_is_string(jn) ||
        !json_is_integer(jk) || !json_is_integer(jv) || !json_is_array(jf) ||
        json_integer_value(jk) < 0 || json_integer_value(jk) > 0xFFFF ||
        json_integer_value(jv) < 1 || json_integer_value(jv) > 255 ||
        json_array_size(jf) > BP_TYPE_FIELDS_MAX) {
        bp_err(BP_ECORRUPT,
               "%s: not a type descriptor (four keys: a name, a kind 0..65535, a version "
               "1..255 and at most 256 fields)",
               where);
        return NULL;
    }
    bp_stored_type *st = calloc(1, sizeof *st);
    size_t n = json_array_size(jf);
    if (st) st->fs = calloc(n ? n : 1, sizeof *st->fs);
    if (st) st->t.name = strdup(json_string_value(jn));
    if (!st || !st->fs || !st->t.name) {
        stored_free(st);
        bp_err(BP_ENOMEM, "stored schemas: out of memory");
        return NULL;
    }
    st->t.struct_size = sizeof st->t;
    st->t.kind = (uint16_t)json_integer_value(jk);
    st->t.version = (uint8_t)json_integer_value(jv);
    st->t.fields = bp__stored_fields;
    size_t size = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const json_t *f = json_array_get(jf, i);
        const json_t *fn = json_object_get(f, "name"), *ft = json_object_get(f, "type"),
                     *fsh = json_object_get(f, "shape"), *fb = json_object_get(f, "n");
        ok = json_is_object(f) && json_is_string(fn) && json_is_string(ft) && json_is_string(fsh) &&
             json_is_integer(fb) && json_integer_value(fb) >= 0 &&
             json_integer_value(fb) <= UINT32_MAX;
        bp_field *x = &st->fs[i];
        if (ok) x->name = strdup(json_string_value(fn));
        st->t.n_fields = i + 1; /* (what stored_free frees) */
        ok = ok && x->name;
        if (!ok) break;
        for (unsigned k = BP_FT_BOOL; k <= BP_FT_BYTES && !x->type; k++)
            if (strcmp(json_string_value(ft), bp_field_type_name(k)) == 0) x->type = (uint8_t)k;
        x->shape = (uint8_t)name_index(json_string_value(fsh), shape_names, 4);
        x->n = (uint32_t)json_integer_value(fb);
        ok = x->type && x->shape;
        if (ok) place(x, &size);
    }
    st->t.size = size ? align_to(size, 8) : 8;
    if (!ok || bp_type_check(&st->t) != BP_OK) {
        bp_err(BP_ECORRUPT,
               "%s ('%s'): not a valid type (each field a map of name, type, shape and n; "
               "bp_type_check's rules)",
               where, json_string_value(jn));
        stored_free(st);
        return NULL;
    }
    return st;
}

/* ------------------------------------------------------------ a handle's list */

void bp_schemas_free(bp_schemas *l) {
    for (size_t i = 0; i < l->n; i++)
        stored_free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Take in the events of batpak:schema past the list's clock (under mu). A descriptor that is
 * not valid is passed over (counted in bad): the schemas are a help to readers, and the
 * event itself is the store's like any other (verify checks its hash and chain). */
static bp_status load_more(bp_store *s, bp_schemas *l) {
    uint64_t clock = 0;
    bp_hash h;
    bp_status rc = bp_entity_head(s, &clock, &h, SCHEMA_ENTITY);
    if (rc == BP_ENOTFOUND || (!rc && clock <= l->clock)) return BP_OK;
    if (rc) return rc;
    bp_iter *it;
    if ((rc = bp_stream(s, &it, SCHEMA_ENTITY, BP_READ_FULL))) return rc;
    const bp_event *ev;
    while (!rc && (rc = bp_iter_next(it, &ev)) == BP_OK) {
        if (ev->clock <= l->clock) continue;
        l->clock = ev->clock;
        if (ev->kind != BP_KIND_SYSTEM_SCHEMA || !ev->payload) continue;
        json_t *d = bp_json_from_msgpack(ev->payload, ev->payload_len);
        char where[64];
        snprintf(where, sizeof where, "stored schema at global_seq %llu",
                 (unsigned long long)ev->global_seq);
        bp_stored_type *st = d ? from_json(d, where) : NULL;
        json_decref(d);
        if (!st) {
            l->bad++;
            bp_err_clear();
            continue;
        }
        bp_stored_type **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
        if (!nv) {
            stored_free(st);
            rc = bp_err(BP_ENOMEM, "stored schemas: out of memory");
            break;
        }
        l->v = nv;
        l->v[l->n++] = st;
    }
    bp_iter_free(it);
    return rc == BP_DONE ? BP_OK : rc;
}

bp_status bp_schemas_lock(bp_store *s, bp_schemas **out) {
    bp_typed_state *t = bp_typed_of(s);
    pthread_mutex_lock(&t->schema_mu);
    bp_status rc = load_more(s, &t->schemas);
    if (rc) {
        pthread_mutex_unlock(&t->schema_mu);
        return rc;
    }
    *out = &t->schemas;
    return BP_OK;
}

void bp_schemas_unlock(bp_store *s) {
    pthread_mutex_unlock(&bp_typed_of(s)->schema_mu);
}

const bp_type *bp_schemas_find(const bp_schemas *l, uint16_t kind, unsigned version) {
    const bp_type *best = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const bp_type *t = &l->v[i]->t;
        if (t->kind != kind) continue;
        if (version ? t->version == version : !best || t->version > best->version) best = t;
    }
    return best;
}

/* ------------------------------------------------------------ the API */

static bool same_descriptor(const bp_type *a, const bp_type *b) {
    if (strcmp(a->name, b->name) || a->kind != b->kind || a->version != b->version ||
        a->n_fields != b->n_fields)
        return false;
    const bp_field *fa = bp_type_fields(a), *fb = bp_type_fields(b);
    for (size_t i = 0; i < a->n_fields; i++)
        if (strcmp(fa[i].name, fb[i].name) || fa[i].type != fb[i].type ||
            fa[i].shape != fb[i].shape || fa[i].n != fb[i].n)
            return false;
    return true;
}

/* The stored descriptor t may not be recorded beside (same kind and version but other
 * fields, or one name for two kinds), or NULL. */
static const bp_type *clash(const bp_schemas *l, const bp_type *t, bool *same) {
    *same = false;
    for (size_t i = 0; i < l->n; i++) {
        const bp_type *o = &l->v[i]->t;
        if (o->kind == t->kind && o->version == t->version) {
            *same = same_descriptor(o, t);
            return *same ? NULL : o;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        const bp_type *o = &l->v[i]->t;
        if ((o->kind == t->kind) != (strcmp(o->name, t->name) == 0)) return o;
    }
    return NULL;
}

bp_status bp_schema_record(bp_store *s, bp_receipt *receipt, const bp_type *t) {
    if (!s) return bp_err(BP_EINVAL, "bp_schema_record: NULL store");
    bp_status rc = bp_type_check(t);
    if (rc) return rc;
    if (bp_store_read_only(s))
        return bp_err(BP_EREADONLY, "bp_schema_record '%s': the store is open read-only", t->name);
    bp_schemas *l;
    if ((rc = bp_schemas_lock(s, &l))) return rc;
    bool same;
    const bp_type *o = clash(l, t, &same);
    if (o)
        rc = bp_err(BP_EEXIST,
                    "bp_schema_record '%s' (kind 0x%04x version %u): the store holds '%s' (kind "
                    "0x%04x version %u), which it does not match: a changed type takes a new "
                    "version, a new type a new kind and name",
                    t->name, t->kind, t->version, o->name, o->kind, o->version);
    if (!rc && !same) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        rc = encode_descriptor(t, &sb);
        if (!rc)
            rc = bp_append_system(s, receipt, SCHEMA_ENTITY, SCHEMA_ENTITY, BP_KIND_SYSTEM_SCHEMA,
                                  sb.data, sb.size, BP_DURABLE);
        msgpack_sbuffer_destroy(&sb);
        if (!rc) rc = load_more(s, l); /* (what it wrote, in the list now) */
    } else if (!rc && receipt) {
        receipt->global_seq = 0; /* (nothing written: it was there) */
    }
    bp_schemas_unlock(s);
    return rc;
}

bp_status bp_schema_record_json(bp_store *s, bp_receipt *receipt, const char *json, size_t len) {
    if (!s || !json) return bp_err(BP_EINVAL, "bp_schema_record_json: NULL argument");
    json_error_t err;
    json_t *d = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!d)
        return bp_err(BP_EINVAL, "bp_schema_record_json: invalid JSON at line %d column %d: %s",
                      err.line, err.column, err.text);
    bp_stored_type *st = from_json(d, "bp_schema_record_json: the descriptor given");
    json_decref(d);
    if (!st) { /* (the same message, as an argument error) */
        char why[300];
        snprintf(why, sizeof why, "%s", bp_last_error());
        return bp_err(BP_EINVAL, "%s", why);
    }
    bp_status rc = bp_schema_record(s, receipt, &st->t);
    stored_free(st);
    return rc;
}

static json_t *descriptor_json(const bp_type *t) {
    json_t *fields = json_array();
    const bp_field *fs = bp_type_fields(t);
    for (size_t i = 0; fields && i < t->n_fields; i++)
        json_array_append_new(fields,
                              json_pack("{s:s, s:s, s:s, s:I}", "name", fs[i].name, "type",
                                        bp_field_type_name(fs[i].type), "shape",
                                        shape_names[fs[i].shape], "n", (json_int_t)fs[i].n));
    return json_pack("{s:s, s:i, s:i, s:o}", "name", t->name, "kind", (int)t->kind, "version",
                     (int)t->version, "fields", fields);
}

static bp_status dump_json(json_t *v, char **out, const char *op) {
    *out = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    return *out ? BP_OK : bp_err(BP_ENOMEM, "%s: out of memory", op);
}

bp_status bp_schema_json(bp_store *s, char **json) {
    if (json) *json = NULL;
    if (!s || !json) return bp_err(BP_EINVAL, "bp_schema_json: NULL argument");
    bp_schemas *l;
    bp_status rc = bp_schemas_lock(s, &l);
    if (rc) return rc;
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, descriptor_json(&l->v[i]->t));
    bp_schemas_unlock(s);
    return dump_json(a, json, "bp_schema_json");
}

/* The JSON Schema of one field's value (bp_type_to_json's forms). */
static json_t *value_schema(const bp_field *f) {
    static const long long lo[] = {0, 0, -128, -32768, -2147483648LL, 0, 0, 0, 0};
    static const long long hi[] = {0, 0, 127, 32767, 2147483647LL, 0, 255, 65535, 4294967295LL};
    switch (f->type) {
    case BP_FT_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case BP_FT_I8:
    case BP_FT_I16:
    case BP_FT_I32:
    case BP_FT_U8:
    case BP_FT_U16:
    case BP_FT_U32:
        return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)lo[f->type],
                         "maximum", (json_int_t)hi[f->type]);
    case BP_FT_I64:
    case BP_FT_U64: /* (past 2^53 its JSON form is a decimal string) */
        return json_pack("{s:[{s:s},{s:s, s:s}]}", "anyOf", "type", "integer", "type", "string",
                         "pattern", f->type == BP_FT_I64 ? "^-?[0-9]+$" : "^[0-9]+$");
    case BP_FT_F32:
    case BP_FT_F64:
        return json_pack("{s:[{s:s},{s:[s,s,s]}]}", "anyOf", "type", "number", "enum", "NaN",
                         "Infinity", "-Infinity");
    case BP_FT_STR: /* (n bytes of UTF-8: at most n characters) */
        return json_pack("{s:s, s:I}", "type", "string", "maxLength", (json_int_t)f->n);
    default: /* BYTES: lower-case hex */
        return json_pack("{s:s, s:s, s:I}", "type", "string", "pattern", "^([0-9a-f]{2})*$",
                         "maxLength", (json_int_t)f->n * 2);
    }
}

bp_status bp_schema_json_schema(bp_store *s, char **json, uint16_t kind, unsigned version) {
    if (json) *json = NULL;
    if (!s || !json) return bp_err(BP_EINVAL, "bp_schema_json_schema: NULL argument");
    bp_schemas *l;
    bp_status rc = bp_schemas_lock(s, &l);
    if (rc) return rc;
    const bp_type *t = bp_schemas_find(l, kind, version);
    json_t *doc = NULL;
    if (t) {
        json_t *props = json_object(), *req = json_array();
        const bp_field *fs = bp_type_fields(t);
        for (size_t i = 0; props && req && i < t->n_fields; i++) {
            json_t *v = value_schema(&fs[i]);
            if (fs[i].shape == BP_FS_ARR)
                v = json_pack("{s:s, s:o, s:I}", "type", "array", "items", v, "maxItems",
                              (json_int_t)fs[i].n);
            json_object_set_new(props, fs[i].name, v);
            if (fs[i].shape != BP_FS_OPT) json_array_append_new(req, json_string(fs[i].name));
        }
        doc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:i, s:i}", "$schema",
                        "https://json-schema.org/draft/2020-12/schema", "title", t->name, "type",
                        "object", "properties", props, "required", req, "additionalProperties", 0,
                        "x-batpak-kind", (int)t->kind, "x-batpak-version", (int)t->version);
    }
    bp_schemas_unlock(s);
    if (!t)
        return bp_err(BP_ENOTFOUND, "bp_schema_json_schema: no stored schema of kind 0x%04x%s",
                      kind, version ? " at that version" : "");
    return dump_json(doc, json, "bp_schema_json_schema");
}

/* ------------------------------------------------------------ JSON in, as a stored type */

/* One scalar of field f from v (its JSON form, bp_type_to_json's) into p; false with why. */
static bool scalar_from_json(const bp_field *f, const json_t *v, uint8_t *p, const char **why) {
    static const long long lo[] = {0, 0, -128, -32768, -2147483648LL, INT64_MIN, 0, 0, 0, 0};
    static const unsigned long long hi[] = {0,         0,   127,   32767,         2147483647ULL,
                                            INT64_MAX, 255, 65535, 4294967295ULL, UINT64_MAX};
    switch (f->type) {
    case BP_FT_BOOL:
        if (!json_is_boolean(v)) return *why = "not true or false", false;
        *(bool *)p = json_is_true(v);
        return true;
    case BP_FT_F32:
    case BP_FT_F64: {
        double d;
        const char *sv = json_is_string(v) ? json_string_value(v) : NULL;
        if (json_is_number(v))
            d = json_number_value(v);
        else if (sv && !strcmp(sv, "NaN"))
            d = NAN;
        else if (sv && !strcmp(sv, "Infinity"))
            d = INFINITY;
        else if (sv && !strcmp(sv, "-Infinity"))
            d = -INFINITY;
        else
            return *why = "not a number", false;
        if (f->type == BP_FT_F32) {
            float x = (float)d;
            memcpy(p, &x, sizeof x);
        } else {
            memcpy(p, &d, sizeof d);
        }
        return true;
    }
    default: { /* integers: a JSON integer, or (64-bit) its decimal string */
        bool neg = false;
        unsigned long long u = 0;
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            neg = x < 0;
            u = neg ? (unsigned long long)(-(x + 1)) + 1 : (unsigned long long)x;
        } else if (json_is_string(v) && (f->type == BP_FT_I64 || f->type == BP_FT_U64)) {
            const char *sv = json_string_value(v), *d = sv + (sv[0] == '-');
            neg = sv[0] == '-';
            if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 20)
                return *why = "not an integer", false;
            errno = 0;
            u = strtoull(d, NULL, 10);
            if (errno) return *why = "out of range", false;
        } else {
            return *why = "not an integer", false;
        }
        bool is_signed = f->type <= BP_FT_I64;
        if (neg && (!is_signed || u > (unsigned long long)(-(lo[f->type] + 1)) + 1))
            return *why = "out of range", false;
        if (!neg && u > hi[f->type]) return *why = "out of range", false;
        long long sval = neg ? (long long)(~u + 1) : (long long)u;
        size_t sz = bp_field_scalar_size(f->type);
        if (is_signed) {
            int8_t a = (int8_t)sval;
            int16_t b = (int16_t)sval;
            int32_t c = (int32_t)sval;
            int64_t e = (int64_t)sval;
            memcpy(p, sz == 1 ? (void *)&a : sz == 2 ? (void *)&b : sz == 4 ? (void *)&c : &e, sz);
        } else {
            uint8_t a = (uint8_t)u;
            uint16_t b = (uint16_t)u;
            uint32_t c = (uint32_t)u;
            uint64_t e = u;
            memcpy(p, sz == 1 ? (void *)&a : sz == 2 ? (void *)&b : sz == 4 ? (void *)&c : &e, sz);
        }
        return true;
    }
    }
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Field f of the value at val from v; false with why. */
static bool field_from_json(const bp_field *f, const json_t *v, uint8_t *val, const char **why) {
    if (f->shape == BP_FS_OPT) *(bool *)(val + f->aux_off) = true;
    if (f->type == BP_FT_STR) {
        if (!json_is_string(v)) return *why = "not a string", false;
        size_t n = json_string_length(v);
        if (n > f->n) return *why = "longer than its bound", false;
        if (memchr(json_string_value(v), 0, n)) return *why = "holds a NUL byte", false;
        memcpy(val + f->off, json_string_value(v), n);
        val[f->off + n] = 0;
        return true;
    }
    if (f->type == BP_FT_BYTES) {
        const char *h = json_is_string(v) ? json_string_value(v) : NULL;
        size_t n = h ? strlen(h) : 0;
        if (!h || n % 2) return *why = "not lower-case hex", false;
        if (n / 2 > f->n) return *why = "longer than its bound", false;
        for (size_t i = 0; i < n / 2; i++) {
            int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
            if (a < 0 || b < 0) return *why = "not lower-case hex", false;
            val[f->off + i] = (uint8_t)(a * 16 + b);
        }
        uint32_t len = (uint32_t)(n / 2);
        memcpy(val + f->len_off, &len, sizeof len);
        return true;
    }
    if (f->shape != BP_FS_ARR) return scalar_from_json(f, v, val + f->off, why);
    if (!json_is_array(v)) return *why = "not an array", false;
    if (json_array_size(v) > f->n) return *why = "more elements than its bound", false;
    uint32_t count = (uint32_t)json_array_size(v);
    memcpy(val + f->aux_off, &count, sizeof count);
    size_t sz = bp_field_scalar_size(f->type);
    for (size_t i = 0; i < count; i++)
        if (!scalar_from_json(f, json_array_get(v, i), val + f->off + i * sz, why)) return false;
    return true;
}

/* The value of t that obj (a JSON object) is, into val (t->size zeroed bytes). */
static bp_status value_from_json(const bp_type *t, const json_t *obj, uint8_t *val) {
    if (!json_is_object(obj))
        return bp_err(BP_EINVAL, "'%s' (kind 0x%04x): the payload must be a JSON object", t->name,
                      t->kind);
    const bp_field *fs = bp_type_fields(t);
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)obj, key, item) {
        size_t i = 0;
        while (i < t->n_fields && strcmp(fs[i].name, key))
            i++;
        if (i == t->n_fields)
            return bp_err(BP_EINVAL, "'%s' (kind 0x%04x): field '%s': the type has no such field",
                          t->name, t->kind, key);
    }
    for (size_t i = 0; i < t->n_fields; i++) {
        const json_t *v = json_object_get(obj, fs[i].name);
        const char *why = NULL;
        if (!v && fs[i].shape == BP_FS_OPT) continue;
        if (!v)
            return bp_err(BP_EINVAL, "'%s' (kind 0x%04x): field '%s' (%s) is missing", t->name,
                          t->kind, fs[i].name, bp_field_type_name(fs[i].type));
        if (!field_from_json(&fs[i], v, val, &why))
            return bp_err(BP_EINVAL, "'%s' (kind 0x%04x): field '%s' (%s%s): %s", t->name, t->kind,
                          fs[i].name, fs[i].shape == BP_FS_ARR ? "array of " : "",
                          bp_field_type_name(fs[i].type), why);
    }
    return BP_OK;
}

bp_status bp_schema_encode_json(bp_store *s, uint8_t **out, size_t *out_len, unsigned *version,
                                uint16_t kind, const char *json, size_t len) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!s || !out || !out_len || !json)
        return bp_err(BP_EINVAL, "bp_schema_encode_json: NULL argument");
    /* the type first: a kind without one (the common case) costs no parse; a stored type
     * never changes or goes away, so it is used after the list is let go */
    bp_schemas *l;
    bp_status rc = bp_schemas_lock(s, &l);
    if (rc) return rc;
    const bp_type *t = bp_schemas_find(l, kind, 0);
    bp_schemas_unlock(s);
    if (!t)
        return bp_err(BP_ENOTFOUND, "bp_schema_encode_json: no stored schema of kind 0x%04x", kind);
    json_error_t err;
    json_t *obj =
        json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!obj)
        return bp_err(BP_EINVAL, "bp_schema_encode_json: invalid JSON at line %d column %d: %s",
                      err.line, err.column, err.text);
    size_t cap = bp_type_encoded_max(t);
    uint8_t *val = calloc(1, t->size), *buf = malloc(cap ? cap : 1);
    rc = val && buf ? value_from_json(t, obj, val)
                    : bp_err(BP_ENOMEM, "bp_schema_encode_json: out of memory");
    if (!rc) rc = bp_type_encode(t, buf, cap, out_len, val);
    json_decref(obj);
    free(val);
    if (rc) {
        free(buf);
        *out_len = 0;
        return rc;
    }
    if (version) *version = t->version;
    *out = buf;
    return BP_OK;
}
