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

int cmd_schema(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"json-schema", true}, {"version", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *which = NULL;
    uint64_t version = 0;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "json-schema")) {
            which = arg.value;
        } else if (cli_arg_is(&arg, "version")) {
            if ((code = cli_parse_number(c, "--version", arg.value, 255, &version)) != CLI_OK)
                return code;
        } else {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        }
    }
    if (r < 0) return CLI_EUSAGE;
    if (version && !which) return cli_fail(c, CLI_EUSAGE, "--version goes with --json-schema");
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
