/* batpak snapshot / ancestors / export / import: maintenance, lineage, moving events. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- snapshot */

int cmd_snapshot(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
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
    bp_snapshot_report rep = BP_SNAPSHOT_REPORT_INIT;
    bp_status rc = bp_store_snapshot(s, &rep, dest);
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

/* ----------------------------------------------------------------- compact */

int cmd_compact(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"max-age", true},
                                      {"keep-last", true},
                                      {"tombstoned", false},
                                      {"dry-run", false},
                                      {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "max-age")) {
            if (!cli_parse_duration_ms(arg.value, &o.max_age_ms) || !o.max_age_ms)
                return cli_fail(c, CLI_EUSAGE,
                                "--max-age: '%s' is not a duration above 0 (a number and ms, s, m, "
                                "h or d: 90d)",
                                arg.value);
        } else if (cli_arg_is(&arg, "keep-last")) {
            if ((code = cli_parse_number(c, "--keep-last", arg.value, UINT32_MAX, &o.keep_last)) !=
                CLI_OK)
                return code;
            if (!o.keep_last) return cli_fail(c, CLI_EUSAGE, "--keep-last: must be at least 1");
        } else if (cli_arg_is(&arg, "tombstoned")) {
            o.tombstoned = true;
        } else if (cli_arg_is(&arg, "dry-run")) {
            o.dry_run = true;
        } else {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        }
    }
    if (r < 0) return CLI_EUSAGE;
    bp_store *s; /* a dry run plans on a read-only handle: it writes nothing */
    if ((code = o.dry_run ? cli_open_read(c, &s) : cli_open_write(c, &s)) != CLI_OK) return code;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    o.progress = cli_progress_events;
    o.progress_ctx = (void *)"compact";
    bp_status rc = bp_compact(s, &rep, &o);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    json_t *j = json_object();
    if (!j) cli_oom();
    cli_json_set(j, "changed", json_boolean(rep.changed));
    cli_json_set(j, "dry_run", json_boolean(o.dry_run));
    cli_json_set(j, "segments_before", json_integer(rep.segments_before));
    cli_json_set(j, "segments_after", json_integer(rep.segments_after));
    cli_json_set(j, "events_kept", cli_json_u64(rep.events_kept));
    cli_json_set(j, "events_removed", cli_json_u64(rep.events_removed));
    cli_json_set(j, "entities_anchored", json_integer(rep.entities_anchored));
    cli_json_set(j, "bytes_before", cli_json_u64(rep.bytes_before));
    cli_json_set(j, "bytes_after", cli_json_u64(rep.bytes_after));
    cli_json_set(j, "upto", cli_json_u64(rep.upto));
    cli_json_set(j, "duration_us", cli_json_u64(rep.duration_us));
    cli_print_json(j);
    return cli_close(c, s, CLI_OK);
}

int cmd_tombstone(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"scope", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *entity = NULL, *scope = NULL;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "scope"))
            scope = arg.value;
        else if (entity)
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        else
            entity = arg.value;
    }
    if (r < 0) return CLI_EUSAGE;
    if (!entity) return cli_fail(c, CLI_EUSAGE, "needs an ENTITY");
    if (!scope) return cli_fail(c, CLI_EUSAGE, "needs --scope SCOPE");
    bp_store *s;
    int code = cli_open_write(c, &s);
    if (code != CLI_OK) return code;
    bp_receipt rec = BP_RECEIPT_INIT;
    bp_status rc = bp_tombstone(s, &rec, entity, scope);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    json_t *j = json_object();
    if (!j) cli_oom();
    char id[37];
    bp_id_format(&rec.event_id, id);
    cli_json_set(j, "entity", cli_json_text(entity, strlen(entity)));
    cli_json_set(j, "event_id", cli_json_text(id, strlen(id)));
    cli_json_set(j, "global_seq", cli_json_u64(rec.global_seq));
    cli_json_set(j, "clock", cli_json_u64(rec.clock));
    cli_print_json(j);
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
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *id_text = NULL;
    bp_walk_mode mode = BP_WALK_CHAIN;
    uint64_t limit = 0;
    bool has_limit = false;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "causation")) {
            mode = BP_WALK_CAUSATION;
        } else if (cli_arg_is(&arg, "limit")) {
            if ((code = cli_parse_number(c, "--limit", arg.value, UINT32_MAX, &limit)) != CLI_OK)
                return code;
            has_limit = true;
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
    /* --limit N: at most N, as in every command (bp_walk_ancestors' 0 is "all") */
    bp_status rc = has_limit && !limit
                       ? BP_OK
                       : bp_walk_ancestors(s, &id, mode, (size_t)limit, print_ancestor, s);
    code = rc ? cli_fail_status(c, rc) : CLI_OK;
    return cli_close(c, s, cli_finish_output(c, code));
}

/* ------------------------------------------------------------ export/import */

static bp_status write_stdout(void *ctx, const void *data, size_t len) {
    (void)ctx;
    if (fwrite(data, 1, len, stdout) != len)
        return bp_set_error(BP_EIO, "export: cannot write stdout");
    return BP_OK;
}

int cmd_export(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"after", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    uint64_t after = 0;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!cli_arg_is(&arg, "after"))
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if ((code = cli_parse_number(c, "--after", arg.value, UINT64_MAX - 1, &after)) != CLI_OK)
            return code;
    }
    if (r < 0) return CLI_EUSAGE;
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    bp_export_options eo = BP_EXPORT_OPTIONS_INIT;
    eo.after_seq = after;
    eo.progress = cli_progress;
    eo.progress_ctx = "export";
    bp_status rc = bp_export(s, write_stdout, NULL, &eo);
    code = rc ? cli_fail_status(c, rc) : CLI_OK;
    return cli_close(c, s, cli_finish_output(c, code));
}

int cmd_import(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *path = NULL;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (path) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        path = arg.value;
    }
    if (r < 0) return CLI_EUSAGE;
    if (!path) return cli_fail(c, CLI_EUSAGE, "needs a FILE of exported NDJSON, or - for stdin");
    if (cli_check_dir(c)) return CLI_EUSAGE;
    bool is_stdin = strcmp(path, "-") == 0;
    if (is_stdin) cli_stdin_hint(c, "an export's NDJSON");
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in)
        return cli_fail(c, errno == ENOENT ? CLI_ENOTFOUND : CLI_EUSAGE, "%s: %s", path,
                        strerror(errno));
    uint64_t total = 0;
    if (!is_stdin && fseek(in, 0, SEEK_END) == 0) {
        long end = ftell(in);
        total = end > 0 ? (uint64_t)end : 0;
        rewind(in);
    }
    bp_open_options o = cli_open_options(c);
    o.no_open_event = true; /* its own event would take the seq the export's first one has */
    bp_store *s;
    bp_status rc = bp_store_open(&s, c->dir, &o);
    if (rc) {
        if (!is_stdin) fclose(in);
        return cli_fail_status(c, rc);
    }
    bp_importer *imp;
    rc = bp_import_begin(s, &imp);
    char *line = NULL;
    size_t cap = 0;
    uint64_t done = 0;
    ssize_t n;
    if (!rc) cli_progress("import", 0, total);
    while (!rc && (n = getline(&line, &cap, in)) > 0) {
        rc = bp_import_line(imp, line, (size_t)n);
        done += (uint64_t)n;
        if (total) cli_progress("import", done, total);
    }
    free(line);
    if (!rc && ferror(in)) rc = bp_set_error(BP_EIO, "%s: read failed", path);
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    if (imp) {
        bp_status erc = bp_import_end(imp, &rep);
        if (!rc) rc = erc;
    }
    if (!is_stdin) fclose(in);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    json_t *out = json_object();
    if (!out) cli_oom();
    cli_json_set(out, "lines", cli_json_u64(rep.lines));
    cli_json_set(out, "imported", cli_json_u64(rep.imported));
    cli_json_set(out, "skipped", cli_json_u64(rep.skipped));
    cli_print_json(out);
    return cli_close(c, s, CLI_OK);
}

/* ------------------------------------------------------------------ forget */

int cmd_forget(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *entity = NULL;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (entity) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        entity = arg.value;
    }
    if (r < 0) return CLI_EUSAGE;
    if (!entity) return cli_fail(c, CLI_EUSAGE, "needs an ENTITY");
    bp_store *s;
    int code = cli_open_write(c, &s);
    if (code != CLI_OK) return code;
    bp_status rc = bp_forget(s, entity);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "entity", cli_json_text(entity, strlen(entity)));
    cli_json_set(o, "forgotten", json_true());
    cli_print_json(o);
    return cli_close(c, s, CLI_OK);
}
