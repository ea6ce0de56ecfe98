/* batpak init: create the store (a no-op when it exists). */
#include "cli/cli.h"

#include <string.h>

int cmd_init(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"seal", false}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!cli_arg_is(&arg, "seal"))
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        c->seal = true;
    }
    if (r < 0) return CLI_EUSAGE;
    bp_store *s;
    if ((code = cli_open_create(c, &s)) != CLI_OK) return code;
    bp_store_open_report report = BP_STORE_OPEN_REPORT_INIT;
    bp_id uuid;
    bp_store_open_report_get(s, &report);
    bp_store_uuid(s, uuid.b);
    bool sealed = bp_store_seals(s);
    if ((code = cli_close(c, s, CLI_OK)) != CLI_OK) return code;
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "dir", cli_json_text(c->dir, strlen(c->dir)));
    cli_json_set(o, "store_uuid", cli_json_id(&uuid));
    cli_json_set(o, "created", json_boolean(report.created));
    cli_json_set(o, "sealed", json_boolean(sealed));
    cli_print_json(o);
    return CLI_OK;
}
