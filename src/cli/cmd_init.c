/* batpak init: create the store (a no-op when it exists). */
#include "cli/cli.h"

#include <string.h>

int cmd_init(cli_ctx *c, int argc, char **argv) {
    int code = cli_no_arguments(c, argc, argv);
    if (code != CLI_OK) return code;
    bp_store *s;
    if ((code = cli_open_write(c, &s)) != CLI_OK) return code;
    bp_open_report report;
    bp_id uuid;
    bp_store_open_report(s, &report);
    bp_store_uuid(s, uuid.b);
    if ((code = cli_close(c, s, CLI_OK)) != CLI_OK) return code;
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "dir", cli_json_text(c->dir, strlen(c->dir)));
    cli_json_set(o, "store_uuid", cli_json_id(&uuid));
    cli_json_set(o, "created", json_boolean(report.created));
    cli_print_json(o);
    return CLI_OK;
}
