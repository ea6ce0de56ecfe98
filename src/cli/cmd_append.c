/* batpak append: one event from the command line, or an atomic batch from NDJSON.
 * Every input is checked before the store is opened, so bad input writes nothing. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest JSON text read for one payload, and for a whole batch file. */
#define MAX_PAYLOAD_JSON (4u * BP_MAX_PAYLOAD)
#define MAX_BATCH_INPUT ((size_t)256 << 20)

/* ------------------------------------------------------------ shared checks */

static int check_kind(const cli_ctx *c, const char *where, uint16_t kind) {
    if (bp_kind_is_application(kind)) return CLI_OK;
    return cli_fail(c, CLI_EUSAGE,
                    "%skind 0x%04x: category 0x%X is reserved (0x0 system, 0xD effects); "
                    "applications use categories 0x1-0xF except 0xD",
                    where, kind, BP_KIND_CATEGORY(kind));
}

static int check_key(const cli_ctx *c, const char *where, const char *key) {
    size_t n = strlen(key);
    if (n >= 1 && n <= BP_IDEMPOTENCY_KEY_MAX) return CLI_OK;
    return cli_fail(c, CLI_EUSAGE, "%sidempotency key: must be 1..%d bytes", where,
                    BP_IDEMPOTENCY_KEY_MAX);
}

static int check_payload_size(const cli_ctx *c, const char *where, size_t len) {
    if (len <= BP_MAX_PAYLOAD) return CLI_OK;
    return cli_fail(c, CLI_EUSAGE,
                    "%spayload: %zu bytes of MessagePack, more than the %u-byte limit", where, len,
                    BP_MAX_PAYLOAD);
}

/* ------------------------------------------------------------ single event */

typedef struct append_args {
    const char *pos[4]; /* ENTITY SCOPE KIND [JSON] */
    int n_pos;
    const char *batch_file;
    const char *expect_clock;
    const char *idempotency_key;
    bool no_sync;
} append_args;

static int parse_append_args(cli_ctx *c, int argc, char **argv, append_args *sa) {
    static const cli_option opts[] = {{"batch", true},           {"expect-clock", true},
                                      {"idempotency-key", true}, {"no-sync", false},
                                      {"sign-key", true},        {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r;
    memset(sa, 0, sizeof *sa);
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "batch"))
            sa->batch_file = arg.value;
        else if (cli_arg_is(&arg, "expect-clock"))
            sa->expect_clock = arg.value;
        else if (cli_arg_is(&arg, "idempotency-key"))
            sa->idempotency_key = arg.value;
        else if (cli_arg_is(&arg, "no-sync"))
            sa->no_sync = true;
        else if (cli_arg_is(&arg, "sign-key"))
            c->sign_key = arg.value;
        else if (sa->n_pos == 4)
            return cli_fail(c, CLI_EUSAGE,
                            "'%s': unexpected argument (JSON payloads with spaces "
                            "need quotes)",
                            arg.value);
        else
            sa->pos[sa->n_pos++] = arg.value;
    }
    return r < 0 ? CLI_EUSAGE : CLI_OK;
}

/* The payload: JSON from the argument, else all of stdin, as MessagePack; its text in *text
 * (heap) for typed_payload. */
static int read_payload(const cli_ctx *c, const char *json_arg, msgpack_sbuffer *out, char **text,
                        size_t *len) {
    int code;
    *text = NULL;
    if (json_arg) {
        *len = strlen(json_arg);
        if (!(*text = strdup(json_arg))) cli_oom();
        code = cli_json_text_to_msgpack(c, "payload", json_arg, *len, out);
    } else if ((code = cli_read_input(c, "-", MAX_PAYLOAD_JSON, text, len)) == CLI_OK) {
        code = cli_json_text_to_msgpack(c, "payload (stdin)", *text, *len, out);
    }
    if (code == CLI_OK) code = check_payload_size(c, "", out->size);
    return code;
}

/* A kind the store holds a schema for (batpak schema): text checked against it and encoded in
 * its form (*mp, heap: bp_free), its version in *version (exit 1 naming the field when it is
 * not a value of the type; where prefixes the message). Any other kind: CLI_OK, *mp NULL. */
static int typed_encode(const cli_ctx *c, const char *where, bp_store *s, uint16_t kind,
                        const char *text, size_t len, uint8_t **mp, size_t *n, uint8_t *version) {
    unsigned v = 0;
    *mp = NULL;
    bp_status rc = bp_schema_encode_json(s, mp, n, &v, kind, text, len);
    if (rc == BP_ENOTFOUND) return CLI_OK;
    if (rc == BP_EINVAL) return cli_fail(c, CLI_EUSAGE, "%spayload: %s", where, bp_last_error());
    if (rc) return cli_fail_status(c, rc);
    *version = (uint8_t)v;
    return check_payload_size(c, where, *n);
}

/* A single append's payload in its type's form when the store holds one for kind (typed_encode);
 * any other kind's stays as read_payload made it. */
static int typed_payload(const cli_ctx *c, bp_store *s, uint16_t kind, const char *text, size_t len,
                         msgpack_sbuffer *out, bp_append_options *o) {
    uint8_t *mp;
    size_t n = 0;
    int code = typed_encode(c, "", s, kind, text, len, &mp, &n, &o->schema_version);
    if (code == CLI_OK && mp) {
        out->size = 0;
        msgpack_sbuffer_write(out, (const char *)mp, n);
    }
    bp_free(mp);
    return code;
}

static int build_single_options(const cli_ctx *c, const append_args *sa, bp_append_options *o) {
    bp_append_options init = BP_APPEND_OPTIONS_INIT;
    *o = init;
    if (sa->expect_clock) {
        int code =
            cli_parse_number(c, "--expect-clock", sa->expect_clock, UINT64_MAX, &o->expected_clock);
        if (code != CLI_OK) return code;
        o->has_expected_clock = true;
    }
    if (sa->idempotency_key) {
        if (check_key(c, "", sa->idempotency_key) != CLI_OK) return CLI_EUSAGE;
        o->idempotency_key = sa->idempotency_key;
    }
    if (sa->no_sync) o->durability = BP_NO_SYNC;
    return CLI_OK;
}

static int append_single(cli_ctx *c, const append_args *sa) {
    if (sa->n_pos < 3)
        return cli_fail(c, CLI_EUSAGE, "needs ENTITY SCOPE KIND [JSON] (or --batch FILE)");
    const char *entity = sa->pos[0], *scope = sa->pos[1];
    uint16_t kind;
    bp_append_options o;
    int code = cli_check_coord(c, "", entity, scope);
    if (code == CLI_OK) code = cli_parse_kind(c, sa->pos[2], &kind);
    if (code == CLI_OK) code = check_kind(c, "", kind);
    if (code == CLI_OK) code = build_single_options(c, sa, &o);
    if (code != CLI_OK) return code;
    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    bp_store *s = NULL;
    char *text = NULL;
    size_t tlen = 0;
    if ((code = read_payload(c, sa->n_pos == 4 ? sa->pos[3] : NULL, &payload, &text, &tlen)) ==
            CLI_OK &&
        (code = cli_open_write(c, &s)) == CLI_OK) {
        bp_receipt r = BP_RECEIPT_INIT;
        code = typed_payload(c, s, kind, text, tlen, &payload, &o);
        bp_status rc = BP_OK;
        if (code == CLI_OK &&
            (rc = bp_append_ex(s, &r, entity, scope, kind, payload.data, payload.size, &o)))
            code = cli_fail_status(c, rc);
        else if (code == CLI_OK)
            cli_print_json(cli_receipt_json(&r));
        code = cli_close(c, s, code);
    }
    free(text);
    msgpack_sbuffer_destroy(&payload);
    return code;
}

/* ------------------------------------------------------------------- batch */

/* A parsed batch. items[i] point into lines[i] (kept alive), into payloads and into opts
 * (both set once parsing is done: the arrays move while they grow). */
typedef struct batch {
    json_t **lines;
    bp_batch_item *items;
    bp_append_options *opts;
    size_t *payload_end; /* payload i is payloads.data[end(i-1) .. end(i)) */
    size_t *line_no;     /* item i comes from this line of the input (from 1) */
    size_t n, cap;
    msgpack_sbuffer payloads;
} batch;

static void batch_free(batch *b) {
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->lines[i]);
    free(b->lines);
    free(b->items);
    free(b->opts);
    free(b->payload_end);
    free(b->line_no);
    msgpack_sbuffer_destroy(&b->payloads);
}

static void batch_grow(batch *b) {
    if (b->n < b->cap) return;
    b->cap = b->cap ? 2 * b->cap : 64;
    b->lines = realloc(b->lines, b->cap * sizeof *b->lines);
    b->items = realloc(b->items, b->cap * sizeof *b->items);
    b->opts = realloc(b->opts, b->cap * sizeof *b->opts);
    b->payload_end = realloc(b->payload_end, b->cap * sizeof *b->payload_end);
    b->line_no = realloc(b->line_no, b->cap * sizeof *b->line_no);
    if (!b->lines || !b->items || !b->opts || !b->payload_end || !b->line_no) cli_oom();
}

/* obj[key] as a string without NUL; *out NULL when absent and optional. */
static int field_string(const cli_ctx *c, const char *where, json_t *obj, const char *key,
                        bool required, const char **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v && !required) return CLI_OK;
    if (!v) return cli_fail(c, CLI_EUSAGE, "%s\"%s\" is missing", where, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return cli_fail(c, CLI_EUSAGE, "%s\"%s\" must be a string without NUL", where, key);
    *out = json_string_value(v);
    return CLI_OK;
}

static int field_kind(const cli_ctx *c, const char *where, json_t *obj, uint16_t *kind) {
    json_t *v = json_object_get(obj, "kind");
    uint64_t k = 0;
    bool ok = false;
    if (!v) return cli_fail(c, CLI_EUSAGE, "%s\"kind\" is missing", where);
    if (json_is_integer(v)) {
        ok = json_integer_value(v) >= 0 && json_integer_value(v) <= 0xFFFF;
        k = (uint64_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        ok = cli_parse_u64(json_string_value(v), 0xFFFF, &k);
    }
    if (!ok)
        return cli_fail(c, CLI_EUSAGE,
                        "%s\"kind\" must be a number in 0..0xFFFF (4097 or \"0x1001\")", where);
    *kind = (uint16_t)k;
    return check_kind(c, where, *kind);
}

static int field_expect_clock(const cli_ctx *c, const char *where, json_t *obj,
                              bp_append_options *o) {
    json_t *v = json_object_get(obj, "expect_clock");
    if (!v) return CLI_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cli_fail(c, CLI_EUSAGE, "%s\"expect_clock\" must be an integer >= 0", where);
    o->has_expected_clock = true;
    o->expected_clock = (uint64_t)json_integer_value(v);
    return CLI_OK;
}

static int check_known_fields(const cli_ctx *c, const char *where, json_t *obj) {
    static const char *known[] = {"entity",  "scope",        "kind",
                                  "payload", "expect_clock", "idempotency_key"};
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool found = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            found = found || !strcmp(key, known[i]);
        if (!found) return cli_fail(c, CLI_EUSAGE, "%sunknown field \"%s\"", where, key);
    }
    return CLI_OK;
}

/* Fill item b->n from the object of one line. */
static int batch_fill_item(const cli_ctx *c, const char *where, batch *b, json_t *obj) {
    bp_batch_item *it = &b->items[b->n];
    bp_append_options *o = &b->opts[b->n];
    bp_append_options init = BP_APPEND_OPTIONS_INIT;
    *o = init;
    memset(it, 0, sizeof *it);
    b->payload_end[b->n] = b->payloads.size;
    int code = check_known_fields(c, where, obj);
    if (code == CLI_OK) code = field_string(c, where, obj, "entity", true, &it->entity);
    if (code == CLI_OK) code = field_string(c, where, obj, "scope", true, &it->scope);
    if (code == CLI_OK) code = cli_check_coord(c, where, it->entity, it->scope);
    if (code == CLI_OK) code = field_kind(c, where, obj, &it->kind);
    if (code == CLI_OK) code = field_expect_clock(c, where, obj, o);
    if (code == CLI_OK)
        code = field_string(c, where, obj, "idempotency_key", false, &o->idempotency_key);
    if (code == CLI_OK && o->idempotency_key) code = check_key(c, where, o->idempotency_key);
    if (code != CLI_OK) return code;
    json_t *payload = json_object_get(obj, "payload");
    if (!payload) return cli_fail(c, CLI_EUSAGE, "%s\"payload\" is missing", where);
    size_t start = b->payloads.size;
    cli_json_to_msgpack(payload, &b->payloads);
    b->payload_end[b->n] = b->payloads.size;
    it->len = b->payloads.size - start;
    it->opts = o;
    return check_payload_size(c, where, it->len);
}

static int batch_parse_line(const cli_ctx *c, batch *b, size_t line_no, const char *text,
                            size_t len) {
    char where[48];
    snprintf(where, sizeof where, "line %zu: ", line_no);
    if (b->n == BP_BATCH_MAX)
        return cli_fail(c, CLI_EUSAGE, "%smore than %u events in one batch", where, BP_BATCH_MAX);
    json_error_t err;
    json_t *obj =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!obj)
        return cli_fail(c, CLI_EUSAGE, "%sinvalid JSON at column %d: %s", where, err.column,
                        err.text);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cli_fail(c, CLI_EUSAGE, "%snot a JSON object", where);
    }
    batch_grow(b);
    b->lines[b->n] = obj; /* owned by the batch from here on */
    b->line_no[b->n] = line_no;
    int code = batch_fill_item(c, where, b, obj);
    b->n++;
    return code;
}

static bool is_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
    return true;
}

static int batch_parse(const cli_ctx *c, batch *b, const char *text, size_t len) {
    size_t line_no = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        line_no++;
        if (!is_blank(text + at, end - at)) {
            int code = batch_parse_line(c, b, line_no, text + at, end - at);
            if (code != CLI_OK) return code;
        }
        at = end + 1;
    }
    if (b->n == 0) return cli_fail(c, CLI_EUSAGE, "the batch has no events");
    for (size_t i = 0; i < b->n; i++) { /* payloads and options no longer move */
        b->items[i].payload = b->payloads.data + (b->payload_end[i] - b->items[i].len);
        b->items[i].opts = &b->opts[i];
    }
    return CLI_OK;
}

static int compare_keys(const void *x, const void *y) {
    const bp_append_options *const *a = x, *const *b = y;
    int d = strcmp((*a)->idempotency_key, (*b)->idempotency_key);
    return d ? d : (*a < *b ? -1 : *a > *b); /* equal keys in line order */
}

/* Two items with one idempotency key are refused by the store; say so before opening it. */
static int batch_check_duplicate_keys(const cli_ctx *c, const batch *b) {
    const bp_append_options **keyed = malloc((b->n ? b->n : 1) * sizeof *keyed);
    if (!keyed) cli_oom();
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->opts[i].idempotency_key) keyed[k++] = &b->opts[i];
    qsort(keyed, k, sizeof *keyed, compare_keys);
    int code = CLI_OK;
    for (size_t i = 1; i < k && code == CLI_OK; i++)
        if (!strcmp(keyed[i - 1]->idempotency_key, keyed[i]->idempotency_key))
            code = cli_fail(c, CLI_EUSAGE,
                            "lines %zu and %zu: idempotency key '%s' appears twice in the batch",
                            b->line_no[keyed[i - 1] - b->opts], b->line_no[keyed[i] - b->opts],
                            keyed[i]->idempotency_key);
    free(keyed);
    return code;
}

/* Items of kinds the store holds a type for (batpak schema): checked against it and written in
 * its form with its version, as a single append's (exit 1 naming the line and the field);
 * typed[i] keeps the bytes. Nothing to do for a store that holds no type. */
static int batch_typed(const cli_ctx *c, bp_store *s, batch *b, uint8_t **typed) {
    char *all = NULL;
    bp_status rc = bp_schema_json(s, &all);
    bool none = !rc && strcmp(all, "[]") == 0;
    bp_free(all);
    if (rc) return cli_fail_status(c, rc);
    for (size_t i = 0; i < b->n && !none; i++) {
        char *text = json_dumps(json_object_get(b->lines[i], "payload"),
                                JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (!text) cli_oom();
        size_t n = 0;
        char where[48];
        snprintf(where, sizeof where, "line %zu: ", b->line_no[i]);
        int code = typed_encode(c, where, s, b->items[i].kind, text, strlen(text), &typed[i], &n,
                                &b->opts[i].schema_version);
        free(text);
        if (code != CLI_OK) return code;
        if (!typed[i]) continue;
        b->items[i].payload = typed[i];
        b->items[i].len = n;
    }
    return CLI_OK;
}

static int batch_commit(cli_ctx *c, batch *b) {
    bp_store *s;
    int code = cli_open_write(c, &s);
    if (code != CLI_OK) return code;
    bp_receipt *receipts = calloc(b->n ? b->n : 1, sizeof *receipts);
    uint8_t **typed = calloc(b->n ? b->n : 1, sizeof *typed);
    if (!receipts || !typed) cli_oom();
    receipts[0].struct_size = sizeof *receipts; /* the stride */
    if ((code = batch_typed(c, s, b, typed)) != CLI_OK) {
        for (size_t i = 0; i < b->n; i++)
            bp_free(typed[i]);
        free(typed);
        free(receipts);
        return cli_close(c, s, code);
    }
    bp_status rc = bp_append_batch(s, receipts, b->items, b->n);
    size_t item;
    int skip = 0;
    const char *msg = bp_last_error();
    if (rc && sscanf(msg, "batch item %zu: %n", &item, &skip) == 1 && skip && item < b->n)
        /* the library counts items from 0; the input's lines are counted from 1 */
        code = cli_fail(c, cli_exit_code(rc), "line %zu: %s", b->line_no[item], msg + skip);
    else if (rc)
        code = cli_fail_status(c, rc);
    else
        for (size_t i = 0; i < b->n; i++)
            cli_print_json(cli_receipt_json(&receipts[i]));
    for (size_t i = 0; i < b->n; i++)
        bp_free(typed[i]);
    free(typed);
    free(receipts);
    return cli_close(c, s, code);
}

static int append_batch(cli_ctx *c, const append_args *sa) {
    if (sa->n_pos || sa->expect_clock || sa->idempotency_key || sa->no_sync)
        return cli_fail(c, CLI_EUSAGE,
                        "--batch FILE takes no other arguments (put expect_clock and "
                        "idempotency_key in the lines)");
    char *text;
    size_t len;
    int code = cli_read_input(c, sa->batch_file, MAX_BATCH_INPUT, &text, &len);
    if (code != CLI_OK) return code;
    batch b;
    memset(&b, 0, sizeof b);
    msgpack_sbuffer_init(&b.payloads);
    code = batch_parse(c, &b, text, len);
    if (code == CLI_OK) code = batch_check_duplicate_keys(c, &b);
    if (code == CLI_OK) code = batch_commit(c, &b);
    batch_free(&b);
    free(text);
    return code;
}

int cmd_append(cli_ctx *c, int argc, char **argv) {
    append_args sa;
    int code = parse_append_args(c, argc, argv, &sa);
    if (code != CLI_OK) return code;
    return sa.batch_file ? append_batch(c, &sa) : append_single(c, &sa);
}
