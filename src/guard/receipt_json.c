/*
 * receipt_json.c — receipts as JSON (doc/FORMAT.md "Receipt JSON"): what
 * `batpak append` prints and `batpak verify-receipt` reads. Parsing is
 * strict: every field is required (key_id and signature only when signed),
 * unknown fields are refused, and each error names the field.
 */
#include "guard/guard_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

struct bp_receipt_doc {
    bool is_denial;
    bp_receipt append;        /* the append receipt, or the denial's event */
    bp_denial_receipt denial; /* denial.event points at append */
};

static const char *dur_name(bp_durability_mode m) {
    return m == BP_DUR_SYNC    ? "sync"
           : m == BP_DUR_EVERY ? "every"
           : m == BP_DUR_NONE  ? "none"
                               : "?";
}

/* Each setter returns false when out of memory. */
static bool set(json_t *o, const char *k, json_t *v) {
    return v && json_object_set_new(o, k, v) == 0;
}
static json_t *u64_json(uint64_t v) {
    if (v <= INT64_MAX) return json_integer((json_int_t)v);
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    return json_string(t);
}
static json_t *hex_json(const uint8_t *p, size_t n) {
    char t[129];
    bp_hex_encode(p, n, t);
    return json_string(t);
}
static json_t *id_json(const uint8_t b[16]) {
    bp_id id;
    char t[37];
    memcpy(id.b, b, 16);
    bp_id_format(&id, t);
    return json_string(t);
}

static bool add_signature(json_t *o, bool is_signed, const uint8_t key_id[32],
                          const uint8_t sig[64]) {
    if (!set(o, "signed", json_boolean(is_signed))) return false;
    return !is_signed ||
           (set(o, "key_id", hex_json(key_id, 32)) && set(o, "signature", hex_json(sig, 64)));
}

static json_t *append_obj(const bp_receipt *r) {
    json_t *o = json_object();
    bool ok =
        o && set(o, "type", json_string("append_receipt")) && set(o, "version", json_integer(1)) &&
        set(o, "store_id", id_json(r->store_id)) && set(o, "event_id", id_json(r->event_id.b)) &&
        set(o, "entity", json_string(r->entity)) && set(o, "scope", json_string(r->scope)) &&
        set(o, "kind", json_integer(r->kind)) && set(o, "global_seq", u64_json(r->global_seq)) &&
        set(o, "clock", u64_json(r->clock)) && set(o, "hlc", u64_json(r->hlc)) &&
        set(o, "prev_hash", hex_json(r->prev_hash.b, 32)) &&
        set(o, "event_hash", hex_json(r->event_hash.b, 32)) &&
        set(o, "durability", json_string(dur_name(r->durability))) &&
        set(o, "replayed", json_boolean(r->replayed)) &&
        add_signature(o, r->is_signed, r->key_id, r->signature);
    if (!ok) json_decref(o);
    return ok ? o : NULL;
}

static bp_status dump(json_t *o, char **out) {
    *out = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return *out ? BP_OK : bp_err(BP_ENOMEM, "receipt JSON: out of memory");
}

bp_status bp_receipt_to_json(const bp_receipt *r, char **out) {
    if (!r || !out) return bp_err(BP_EINVAL, "receipt JSON: NULL argument");
    *out = NULL;
    return dump(append_obj(r), out);
}

bp_status bp_denial_receipt_to_json(const bp_denial_receipt *r, char **out) {
    if (!r || !out || !r->event)
        return bp_err(BP_EINVAL, "denial receipt JSON: NULL argument (or no event receipt)");
    *out = NULL;
    json_t *o = json_object();
    bool ok = o && set(o, "type", json_string("denial_receipt")) &&
              set(o, "version", json_integer(1)) && set(o, "event", append_obj(r->event)) &&
              set(o, "denied_kind", json_integer(r->denied_kind)) &&
              set(o, "proposal_digest", hex_json(r->proposal_digest.b, 32)) &&
              set(o, "n_denials", json_integer(r->n_denials)) &&
              set(o, "gate", json_string(r->denial.gate)) &&
              set(o, "code", json_integer(r->denial.code)) &&
              set(o, "message", json_string(r->denial.message)) &&
              add_signature(o, r->is_signed, r->key_id, r->signature);
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return dump(o, out);
}

void bp_free(void *p) {
    free(p);
}

/* ------------------------------------------------------------------ parse */

typedef struct parser {
    const char *where; /* "append receipt" / "denial receipt" / "denial receipt: event" */
} parser;

static bp_status bad(const parser *ps, const char *field, const char *why) {
    return bp_err(BP_EINVAL, "%s: field '%s' %s", ps->where, field, why);
}

static bp_status get(const parser *ps, json_t *o, const char *k, json_t **v) {
    *v = json_object_get(o, k);
    return *v ? BP_OK : bad(ps, k, "is missing");
}

static bp_status get_u64(const parser *ps, json_t *o, const char *k, uint64_t max, uint64_t *out) {
    json_t *v;
    bp_status rc = get(ps, o, k, &v);
    if (rc) return rc;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (uint64_t)json_integer_value(v) <= max) {
        *out = (uint64_t)json_integer_value(v);
        return BP_OK;
    }
    if (json_is_string(v)) { /* values above INT64_MAX are written as decimal text */
        const char *t = json_string_value(v);
        char *end;
        unsigned long long x = strtoull(t, &end, 10);
        if (*t >= '0' && *t <= '9' && !*end && x <= max) {
            *out = x;
            return BP_OK;
        }
    }
    return bad(ps, k, "is not an unsigned integer in range");
}

static bp_status get_hex(const parser *ps, json_t *o, const char *k, uint8_t *out, size_t n) {
    json_t *v;
    bp_status rc = get(ps, o, k, &v);
    if (rc) return rc;
    if (!json_is_string(v) || !bp_hex_decode(json_string_value(v), json_string_length(v), out, n)) {
        char why[64];
        snprintf(why, sizeof why, "is not %zu hex digits", 2 * n);
        return bad(ps, k, why);
    }
    return BP_OK;
}

static bp_status get_str(const parser *ps, json_t *o, const char *k, char *out, size_t cap) {
    json_t *v;
    bp_status rc = get(ps, o, k, &v);
    if (rc) return rc;
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return bad(ps, k, "is not a string of the allowed length");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return BP_OK;
}

static bp_status get_id(const parser *ps, json_t *o, const char *k, uint8_t out[16]) {
    json_t *v;
    bp_status rc = get(ps, o, k, &v);
    if (rc) return rc;
    bp_id id;
    if (!json_is_string(v) || bp_id_parse(&id, json_string_value(v)) != BP_OK)
        return bad(ps, k, "is not a UUID");
    memcpy(out, id.b, 16);
    return BP_OK;
}

/* Refuse fields outside allowed (a NULL-terminated list). */
static bp_status only(const parser *ps, json_t *o, const char *const *allowed) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) return bp_err(BP_EINVAL, "%s: unknown field '%s'", ps->where, k);
    }
    return BP_OK;
}

static bp_status check_type(const parser *ps, json_t *o, const char *type) {
    json_t *v;
    uint64_t ver;
    bp_status rc = get(ps, o, "type", &v);
    if (rc) return rc;
    if (!json_is_string(v) || strcmp(json_string_value(v), type) != 0)
        return bad(ps, "type",
                   type[0] == 'a' ? "is not \"append_receipt\"" : "is not \"denial_receipt\"");
    if ((rc = get_u64(ps, o, "version", UINT32_MAX, &ver))) return rc;
    if (ver != 1)
        return bp_err(BP_EINVAL, "%s: version %llu is unknown (this build reads version 1)",
                      ps->where, (unsigned long long)ver);
    return BP_OK;
}

static bp_status get_signature(const parser *ps, json_t *o, bool *is_signed, uint8_t key_id[32],
                               uint8_t sig[64]) {
    json_t *v;
    bp_status rc = get(ps, o, "signed", &v);
    if (rc) return rc;
    if (!json_is_boolean(v)) return bad(ps, "signed", "is not true or false");
    *is_signed = json_is_true(v);
    if (!*is_signed) {
        if (json_object_get(o, "key_id") || json_object_get(o, "signature"))
            return bp_err(BP_EINVAL, "%s: 'signed' is false but a key_id or signature is given",
                          ps->where);
        return BP_OK;
    }
    if ((rc = get_hex(ps, o, "key_id", key_id, 32))) return rc;
    return get_hex(ps, o, "signature", sig, 64);
}

static const char *const APPEND_FIELDS[] = {
    "type",       "version",    "store_id", "event_id", "entity",    "scope",
    "kind",       "global_seq", "clock",    "hlc",      "prev_hash", "event_hash",
    "durability", "replayed",   "signed",   "key_id",   "signature", NULL};

static bp_status parse_append(const parser *ps, json_t *o, bp_receipt *r) {
    if (!json_is_object(o)) return bp_err(BP_EINVAL, "%s: not a JSON object", ps->where);
    uint64_t kind;
    json_t *v;
    bp_status rc;
    if ((rc = check_type(ps, o, "append_receipt")) || (rc = only(ps, o, APPEND_FIELDS)) ||
        (rc = get_id(ps, o, "store_id", r->store_id)) ||
        (rc = get_id(ps, o, "event_id", r->event_id.b)) ||
        (rc = get_str(ps, o, "entity", r->entity, sizeof r->entity)) ||
        (rc = get_str(ps, o, "scope", r->scope, sizeof r->scope)) ||
        (rc = get_u64(ps, o, "kind", 0xFFFF, &kind)) ||
        (rc = get_u64(ps, o, "global_seq", UINT64_MAX, &r->global_seq)) ||
        (rc = get_u64(ps, o, "clock", UINT64_MAX, &r->clock)) ||
        (rc = get_u64(ps, o, "hlc", UINT64_MAX, &r->hlc)) ||
        (rc = get_hex(ps, o, "prev_hash", r->prev_hash.b, 32)) ||
        (rc = get_hex(ps, o, "event_hash", r->event_hash.b, 32)) ||
        (rc = get(ps, o, "durability", &v)))
        return rc;
    r->kind = (uint16_t)kind;
    const char *dn = json_is_string(v) ? json_string_value(v) : "";
    r->durability = strcmp(dn, "sync") == 0    ? BP_DUR_SYNC
                    : strcmp(dn, "every") == 0 ? BP_DUR_EVERY
                    : strcmp(dn, "none") == 0  ? BP_DUR_NONE
                                               : BP_DUR_DEFAULT;
    if (r->durability == BP_DUR_DEFAULT)
        return bad(ps, "durability", "is not \"sync\", \"every\" or \"none\"");
    v = json_object_get(o, "replayed");
    if (v && !json_is_boolean(v)) return bad(ps, "replayed", "is not true or false");
    r->replayed = v && json_is_true(v);
    return get_signature(ps, o, &r->is_signed, r->key_id, r->signature);
}

static const char *const DENIAL_FIELDS[] = {
    "type", "version", "event",  "denied_kind", "proposal_digest", "n_denials", "gate",
    "code", "message", "signed", "key_id",      "signature",       NULL};

static bp_status parse_denial(const parser *ps, json_t *o, bp_receipt_doc *d) {
    bp_denial_receipt *r = &d->denial;
    r->event = &d->append;
    uint64_t kind, n;
    json_t *v;
    bp_status rc;
    parser inner = {"denial receipt: event"};
    if ((rc = check_type(ps, o, "denial_receipt")) || (rc = only(ps, o, DENIAL_FIELDS)) ||
        (rc = get(ps, o, "event", &v)) || (rc = parse_append(&inner, v, r->event)) ||
        (rc = get_u64(ps, o, "denied_kind", 0xFFFF, &kind)) ||
        (rc = get_hex(ps, o, "proposal_digest", r->proposal_digest.b, 32)) ||
        (rc = get_u64(ps, o, "n_denials", BP_DENIALS_MAX, &n)) ||
        (rc = get_str(ps, o, "gate", r->denial.gate, sizeof r->denial.gate)) ||
        (rc = get(ps, o, "code", &v)))
        return rc;
    if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
        json_integer_value(v) > INT32_MAX)
        return bad(ps, "code", "is not a 32-bit integer");
    r->denial.code = (int32_t)json_integer_value(v);
    r->denied_kind = (uint16_t)kind;
    r->n_denials = (uint32_t)n;
    if ((rc = get_str(ps, o, "message", r->denial.message, sizeof r->denial.message))) return rc;
    return get_signature(ps, o, &r->is_signed, r->key_id, r->signature);
}

bp_status bp_receipt_from_json(bp_receipt_doc **out, const char *json, size_t len) {
    if (!out) return bp_err(BP_EINVAL, "receipt JSON: out is NULL");
    *out = NULL;
    if (!json) return bp_err(BP_EINVAL, "receipt JSON: text is NULL");
    json_error_t je;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return bp_err(BP_EINVAL, "receipt JSON: line %d column %d: %s", je.line, je.column,
                      je.text);
    bp_receipt_doc *d = calloc(1, sizeof *d);
    bp_status rc = d ? BP_OK : bp_err(BP_ENOMEM, "receipt JSON: out of memory");
    if (d) {
        d->append.struct_size = sizeof d->append;
        d->denial.struct_size = sizeof d->denial;
    }
    if (!rc && !json_is_object(o)) rc = bp_err(BP_EINVAL, "receipt JSON: not a JSON object");
    if (!rc) {
        json_t *t = json_object_get(o, "type");
        d->is_denial =
            t && json_is_string(t) && strcmp(json_string_value(t), "denial_receipt") == 0;
        parser ps = {d->is_denial ? "denial receipt" : "append receipt"};
        rc = d->is_denial ? parse_denial(&ps, o, d) : parse_append(&ps, o, &d->append);
    }
    json_decref(o);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return BP_OK;
}

const bp_receipt *bp_receipt_doc_append(const bp_receipt_doc *d) {
    return d && !d->is_denial ? &d->append : NULL;
}

const bp_denial_receipt *bp_receipt_doc_denial(const bp_receipt_doc *d) {
    return d && d->is_denial ? &d->denial : NULL;
}

void bp_receipt_doc_free(bp_receipt_doc *d) {
    free(d);
}
