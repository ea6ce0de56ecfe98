/* batpak schema: the payload types a store holds (bp_schema_json), and the JSON Schema of
 * one (bp_schema_json_schema). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* The kind named by text: a kind (0x1001, 4097) or the name of a stored type. */
static int kind_of(cli_ctx *c, json_t *all, const char *text, uint16_t *kind) {
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "name")), text) == 0) {
            *kind = (uint16_t)json_integer_value(json_object_get(d, "kind"));
            return CLI_OK;
        }
    }
    return cli_parse_kind(c, text, kind);
}

/* --record FILE|-: each line a descriptor as `batpak schema` prints them, recorded in order
 * (a line already stored writes nothing: global_seq 0). */
static int record(cli_ctx *c, const char *from) {
    char *text;
    size_t len;
    int code = cli_read_input(c, from, 16u << 20, &text, &len);
    if (code != CLI_OK) return code;
    bp_store *s;
    if ((code = cli_open_write(c, &s)) != CLI_OK) {
        free(text);
        return code;
    }
    size_t line = 0, done = 0;
    for (size_t at = 0; at < len && code == CLI_OK;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (strspn(text + at, " \t\r") < end - at) {
            bp_receipt r = BP_RECEIPT_INIT;
            bp_status rc = bp_schema_record_json(s, &r, text + at, end - at);
            if (rc == BP_EINVAL || rc == BP_EEXIST)
                code = cli_fail(c, CLI_EUSAGE, "line %zu: %s", line, bp_last_error());
            else if (rc)
                code = cli_fail_status(c, rc);
            else {
                json_t *o = json_object();
                cli_json_set(o, "line", json_integer((json_int_t)line));
                cli_json_set(o, "global_seq", json_integer((json_int_t)r.global_seq));
                cli_print_json(o);
                done++;
            }
        }
        at = end + 1;
    }
    if (code == CLI_OK && !done) code = cli_fail(c, CLI_EUSAGE, "%s: no descriptor in it", from);
    free(text);
    return cli_close(c, s, cli_finish_output(c, code));
}

int cmd_schema(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {
        {"json-schema", true}, {"version", true}, {"record", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *which = NULL, *from = NULL;
    uint64_t version = 0;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "json-schema")) {
            which = arg.value;
        } else if (cli_arg_is(&arg, "record")) {
            from = arg.value;
        } else if (cli_arg_is(&arg, "version")) {
            if ((code = cli_parse_number(c, "--version", arg.value, 255, &version)) != CLI_OK)
                return code;
        } else {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        }
    }
    if (r < 0) return CLI_EUSAGE;
    if (version && !which) return cli_fail(c, CLI_EUSAGE, "--version goes with --json-schema");
    if (from && which) return cli_fail(c, CLI_EUSAGE, "--record and --json-schema go apart");
    if (from) return record(c, from);
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    char *text = NULL;
    bp_status rc = bp_schema_json(s, &text);
    json_t *all = rc ? NULL : json_loads(text, 0, NULL);
    bp_free(text);
    if (!rc && !all) cli_oom();
    if (rc) {
        code = cli_fail_status(c, rc);
    } else if (!which) { /* one line per stored descriptor */
        size_t i;
        json_t *d;
        json_array_foreach(all, i, d) cli_print_json(json_incref(d));
        code = CLI_OK;
    } else {
        uint16_t kind = 0;
        code = kind_of(c, all, which, &kind);
        if (code == CLI_OK) {
            rc = bp_schema_json_schema(s, &text, kind, (unsigned)version);
            if (rc == BP_ENOTFOUND)
                code = cli_fail(c, CLI_ENOTFOUND,
                                "'%s': the store holds no schema of that type%s (batpak schema "
                                "lists them)",
                                which, version ? " at that version" : "");
            else if (rc)
                code = cli_fail_status(c, rc);
            else
                printf("%s\n", text);
            bp_free(text);
        }
    }
    json_decref(all);
    return cli_close(c, s, cli_finish_output(c, code));
}
