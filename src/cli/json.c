/* JSON for the CLI: JSON <-> MessagePack payloads, events and receipts as JSON. */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One encoder of JSON as MessagePack: the library's (bp_json_to_msgpack). */
static const char *json_reason(void) {
    const char *m = bp_last_error();
    const char *p = "bp_json_to_msgpack: ";
    return strncmp(m, p, strlen(p)) == 0 ? m + strlen(p) : m;
}

void cli_json_to_msgpack(const json_t *v, msgpack_sbuffer *out) {
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    uint8_t *mp = NULL;
    size_t n = 0;
    if (!text || bp_json_to_msgpack(&mp, &n, text, strlen(text)) != BP_OK) cli_oom();
    msgpack_sbuffer_write(out, (const char *)mp, n);
    bp_free(mp);
    free(text);
}

int cli_json_text_to_msgpack(const cli_ctx *c, const char *where, const char *text, size_t len,
                             msgpack_sbuffer *out) {
    uint8_t *mp = NULL;
    size_t n = 0;
    bp_status rc = bp_json_to_msgpack(&mp, &n, text, len);
    if (rc == BP_ENOMEM) cli_oom();
    if (rc) return cli_fail(c, CLI_EUSAGE, "%s: %s", where, json_reason());
    msgpack_sbuffer_write(out, (const char *)mp, n);
    bp_free(mp);
    return CLI_OK;
}

void cli_json_set_payload(json_t *obj, bp_store *s, const bp_event *ev) {
    json_t *v;
    if (ev->payload_forgotten) {
        cli_json_set(obj, "payload", json_null());
        cli_json_set(obj, "payload_forgotten", json_true());
        return;
    }
    char *text = NULL;
    bp_status rc = bp_event_json(s, &text, ev);
    if (rc && s && bp_registered_type(s, ev->kind)) {
        /* the program's type for this kind does not read it: say so, show it untyped */
        cli_json_set(obj, "payload_error", json_string(bp_last_error()));
        rc = bp_event_json(NULL, &text, ev);
    }
    if (rc == BP_ENOMEM) cli_oom();
    if (!rc) { /* the library's JSON text, parsed to nest it in the event's object */
        json_error_t e;
        v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        bp_free(text);
        if (!v && json_error_code(&e) == json_error_out_of_memory) cli_oom();
        if (!v) { /* (the library makes only text that reads back: a reader's limit) */
            cli_json_set(obj, "payload_error", cli_json_text(e.text, strlen(e.text)));
            rc = BP_EINVAL;
        }
    }
    if (!rc)
        cli_json_set(obj, "payload", v);
    else
        cli_json_set(obj, "payload_hex", cli_json_hex(ev->payload, ev->payload_len));
}

/* ------------------------------------------------------ events, receipts */

json_t *cli_event_json(bp_store *s, const bp_event *ev) {
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
    if (!ev->header_only) cli_json_set_payload(o, s, ev);
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
