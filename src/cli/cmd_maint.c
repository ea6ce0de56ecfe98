/* batpak snapshot / ancestors: maintenance and lineage. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- snapshot */

int cmd_snapshot(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false};
    cli_arg arg;
    const char *dest = NULL;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (dest) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        dest = arg.value;
    }
    if (r < 0) return CLI_EUSAGE;
    if (!dest || !*dest) return cli_fail(c, CLI_EUSAGE, "needs a DEST directory (must not exist)");
    bp_store *s;
    int code = cli_open_read(c, &s);
    if (code != CLI_OK) return code;
    bp_snapshot_report rep;
    bp_status rc = bp_store_snapshot(s, dest, &rep);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "dest", cli_json_text(dest, strlen(dest)));
    cli_json_set(o, "global_seq", cli_json_u64(rep.global_seq));
    cli_json_set(o, "segments", json_integer(rep.segments));
    cli_json_set(o, "bytes", cli_json_u64(rep.bytes));
    cli_json_set(o, "duration_us", cli_json_u64(rep.duration_us));
    cli_print_json(o);
    return cli_close(c, s, CLI_OK);
}

/* --------------------------------------------------------------- ancestors */

static bp_status print_ancestor(void *store, const bp_event *ev, uint32_t depth) {
    json_t *o = cli_event_json(store, ev);
    cli_json_set(o, "depth", json_integer(depth));
    cli_print_json(o);
    return BP_OK;
}

int cmd_ancestors(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"causation", false}, {"limit", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false};
    cli_arg arg;
    const char *id_text = NULL;
    bp_walk_mode mode = BP_WALK_CHAIN;
    uint64_t limit = 0;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "causation")) {
            mode = BP_WALK_CAUSATION;
        } else if (cli_arg_is(&arg, "limit")) {
            if ((code = cli_parse_number(c, "--limit", arg.value, UINT32_MAX, &limit)) != CLI_OK)
                return code;
        } else if (id_text) {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        } else {
            id_text = arg.value;
        }
    }
    if (r < 0) return CLI_EUSAGE;
    if (!id_text) return cli_fail(c, CLI_EUSAGE, "needs an EVENT_ID");
    bp_id id;
    if (bp_id_parse(&id, id_text) != BP_OK)
        return cli_fail(c, CLI_EUSAGE, "'%s' is not an event id (a UUID)", id_text);
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    bp_status rc = bp_walk_ancestors(s, &id, mode, (size_t)limit, print_ancestor, s);
    code = rc ? cli_fail_status(c, rc) : CLI_OK;
    return cli_close(c, s, cli_finish_output(c, code));
}
