/* batpak verify / stats / dump: checking and describing a store. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ verify */

static json_t *verify_report_json(const bp_verify_report *rep) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "clean", json_boolean(rep->problems == 0));
    cli_json_set(o, "segments", json_integer(rep->segments));
    cli_json_set(o, "frames", cli_json_u64(rep->frames));
    cli_json_set(o, "events", cli_json_u64(rep->events));
    cli_json_set(o, "entities", cli_json_u64(rep->entities));
    cli_json_set(o, "problems", cli_json_u64(rep->problems));
    cli_json_set(o, "first_problem",
                 rep->problems ? cli_json_text(rep->first_problem, strlen(rep->first_problem))
                               : json_null());
    return o;
}

/* The store would not even open: still print a report, with the reason as its problem. */
static int verify_open_failed(const cli_ctx *c, bp_status rc) {
    const char *msg = *bp_last_error() ? bp_last_error() : bp_strerror(rc);
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "clean", json_false());
    cli_json_set(o, "problems", json_integer(1));
    cli_json_set(o, "first_problem", cli_json_text(msg, strlen(msg)));
    cli_print_json(o);
    return cli_fail(c, CLI_ECORRUPT, "the store does not open: %s", msg);
}

/* The first problem of each entity (at most this many), and the problems of no entity. */
#define VERIFY_LIST_MAX 100

static void collect_problem(void *list, const char *entity, const char *problem) {
    if (json_array_size(list) >= VERIFY_LIST_MAX) return;
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "entity", entity ? cli_json_text(entity, strlen(entity)) : json_null());
    cli_json_set(o, "problem", cli_json_text(problem, strlen(problem)));
    if (json_array_append_new(list, o)) cli_oom();
}

/* What an open with --accept-loss accepted as lost. */
static json_t *loss_json(const bp_store_open_report *r) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "segments_lost", json_integer(r->segments_lost));
    cli_json_set(o, "events_lost", cli_json_u64(r->events_lost));
    cli_json_set(o, "first_lost_seq", cli_json_u64(r->first_lost_seq));
    cli_json_set(o, "note", cli_json_text(r->loss_note, strlen(r->loss_note)));
    return o;
}

json_t *cli_verify_run(bp_store *s, bp_progress_fn progress, void *progress_ctx,
                       bp_verify_report *rep, bp_store_open_report *orep, bp_status *rc) {
    json_t *list = json_array();
    if (!list) cli_oom();
    bp_verify_options vo = BP_VERIFY_OPTIONS_INIT;
    vo.progress = progress;
    vo.progress_ctx = progress_ctx;
    vo.on_problem = collect_problem;
    vo.problem_ctx = list;
    *rc = bp_store_verify(s, rep, &vo);
    bp_store_open_report_get(s, orep); /* --accept-loss: a loss this read-only open went past */
    json_t *report = NULL;
    if (*rc == BP_OK || *rc == BP_ECORRUPT) {
        report = verify_report_json(rep);
        if (rep->problems) cli_json_set(report, "problems_found", json_incref(list));
        if (orep->loss_note[0]) {
            cli_json_set(report, "clean", json_false());
            cli_json_set(report, "loss", loss_json(orep));
        }
    }
    json_decref(list);
    return report;
}

int cmd_verify(cli_ctx *c, int argc, char **argv) {
    int code = cli_no_arguments(c, argc, argv);
    if (code != CLI_OK || (code = cli_check_dir(c)) != CLI_OK) return code;
    bp_open_options o = cli_open_options(c);
    o.create = false;
    o.read_only = true;
    bp_store *s;
    bp_status rc = bp_store_open(&s, c->dir, &o);
    if (rc == BP_ECORRUPT || rc == BP_EVERSION) return verify_open_failed(c, rc);
    if (rc) return cli_fail_status(c, rc);
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    bp_store_open_report orep = BP_STORE_OPEN_REPORT_INIT;
    json_t *report = cli_verify_run(s, cli_progress, "verify", &rep, &orep, &rc);
    if (report) cli_print_json(report);
    if (rc && rc != BP_ECORRUPT)
        code = cli_fail_status(c, rc);
    else if (orep.loss_note[0]) /* the cause of whatever else verify found */
        code = cli_fail(c, CLI_ECORRUPT,
                        "acknowledged events lost: %s (%llu event(s) from global_seq %llu); "
                        "what is left verifies, and a writable open with %s",
                        orep.loss_note, (unsigned long long)orep.events_lost,
                        (unsigned long long)orep.first_lost_seq,
                        c->salvage ? "--salvage moves the rest to DIR/quarantine/"
                                   : "--accept-loss records the loss");
    else if (rc)
        code = cli_fail(c, CLI_ECORRUPT, "%llu problem(s); first: %s",
                        (unsigned long long)rep.problems, rep.first_problem);
    return cli_close(c, s, code);
}

/* ------------------------------------------------------------------- stats */

json_t *cli_open_report_json(const bp_store_open_report *r) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "created", json_boolean(r->created));
    cli_json_set(o, "checkpoint_used", json_boolean(r->checkpoint_used));
    cli_json_set(o, "checkpoint_note",
                 cli_json_text(r->checkpoint_note, strlen(r->checkpoint_note)));
    cli_json_set(o, "segments", json_integer(r->segments));
    cli_json_set(o, "footers_used", json_integer(r->footers_used));
    cli_json_set(o, "frames_scanned", cli_json_u64(r->frames_scanned));
    cli_json_set(o, "bytes_scanned", cli_json_u64(r->bytes_scanned));
    cli_json_set(o, "bytes_cut", cli_json_u64(r->bytes_cut));
    cli_json_set(o, "frames_cut", cli_json_u64(r->frames_cut));
    cli_json_set(o, "events", cli_json_u64(r->events));
    cli_json_set(o, "duration_us", cli_json_u64(r->duration_us));
    if (r->loss_note[0]) cli_json_set(o, "loss", loss_json(r));
    return o;
}

static json_t *diagnostics_json(const bp_store_diagnostics *d, const bp_segment_info *segs,
                                size_t n) {
    json_t *o = json_object(), *list = json_array();
    if (!o || !list) cli_oom();
    cli_json_set(o, "published_seq", cli_json_u64(d->published_seq));
    cli_json_set(o, "written_seq", cli_json_u64(d->written_seq));
    cli_json_set(o, "synced_seq", cli_json_u64(d->synced_seq));
    cli_json_set(o, "unsynced_events", json_integer(d->unsynced_events));
    cli_json_set(o, "submit_queued", json_integer(d->submit_queued));
    cli_json_set(o, "submit_capacity", json_integer(d->submit_capacity));
    cli_json_set(o, "failed_msg",
                 d->failed ? cli_json_text(d->failed_msg, strlen(d->failed_msg)) : json_null());
    for (uint32_t i = 0; i < n; i++) {
        json_t *g = json_object();
        if (!g) cli_oom();
        cli_json_set(g, "segno", json_integer(segs[i].segno));
        cli_json_set(g, "bytes", cli_json_u64(segs[i].bytes));
        cli_json_set(g, "events", cli_json_u64(segs[i].events));
        cli_json_set(g, "first_seq", cli_json_u64(segs[i].first_seq));
        cli_json_set(g, "last_seq", cli_json_u64(segs[i].last_seq));
        cli_json_set(g, "sealed", json_boolean(segs[i].sealed));
        if (json_array_append_new(list, g)) cli_oom();
    }
    cli_json_set(o, "segments", list);
    return o;
}

static json_t *stats_json(const cli_ctx *c, const bp_id *uuid, const bp_store_stats *st,
                          const bp_store_open_report *r) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "dir", cli_json_text(c->dir, strlen(c->dir)));
    cli_json_set(o, "store_uuid", cli_json_id(uuid));
    cli_json_set(o, "events", cli_json_u64(st->events));
    cli_json_set(o, "entities", cli_json_u64(st->entities));
    cli_json_set(o, "scopes", cli_json_u64(st->scopes));
    cli_json_set(o, "segments", json_integer(st->segments));
    cli_json_set(o, "bytes_on_disk", cli_json_u64(st->bytes_on_disk));
    cli_json_set(o, "index_bytes", cli_json_u64(st->index_bytes));
    cli_json_set(o, "index_file_bytes", cli_json_u64(st->index_file_bytes));
    cli_json_set(o, "fsyncs", cli_json_u64(st->fsyncs));
    cli_json_set(o, "appends", cli_json_u64(st->appends));
    cli_json_set(o, "write_p50_us", cli_json_u64(st->write_p50_us));
    cli_json_set(o, "write_p99_us", cli_json_u64(st->write_p99_us));
    cli_json_set(o, "write_max_us", cli_json_u64(st->write_max_us));
    cli_json_set(o, "failed", json_boolean(st->failed));
    cli_json_set(o, "read_only", json_boolean(st->read_only));
    cli_json_set(o, "writer_pid", st->writer_pid ? json_integer(st->writer_pid) : json_null());
    cli_json_set(o, "readers", json_integer(st->readers));
    cli_json_set(o, "open", cli_open_report_json(r));
    return o;
}

bp_status cli_checkpoints_list(bp_store *s, bp_checkpoint_info **out, size_t *n) {
    size_t cap = 0; /* counted, then listed (again while more appear meanwhile) */
    bp_status rc;
    *out = NULL;
    while ((rc = bp_checkpoints_list(s, *out, cap, n)) == BP_ETOOBIG) {
        free(*out);
        cap = *n;
        if (!(*out = calloc(cap, sizeof **out))) cli_oom();
        (*out)[0].struct_size = sizeof **out; /* the stride */
    }
    return rc;
}

/* "12345 (12.1 KiB)" */
static const char *with_size(char *buf, size_t cap, uint64_t bytes) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, cap, "%llu (%.1f %s)", (unsigned long long)bytes, v, units[u]);
    return buf;
}

static void print_stats_table(const cli_ctx *c, const bp_id *uuid, const bp_store_stats *st,
                              const bp_store_open_report *r, bool unshared) {
    char id[37], b1[64], b2[64], b3[64];
    bp_id_format(uuid, id);
    printf("store            %s\n", c->dir);
    printf("store uuid       %s\n", id);
    printf("events           %llu\n", (unsigned long long)st->events);
    printf("entities         %llu\n", (unsigned long long)st->entities);
    printf("scopes           %llu\n", (unsigned long long)st->scopes);
    printf("segments         %u\n", st->segments);
    printf("bytes on disk    %s\n", with_size(b1, sizeof b1, st->bytes_on_disk));
    printf("index memory     %s\n", with_size(b2, sizeof b2, st->index_bytes));
    printf("index files      %s\n", with_size(b2, sizeof b2, st->index_file_bytes));
    if (st->writer_pid && unshared)
        printf("writer           pid %u: shares no live page (DIR/LIVE): its figures and new "
               "events are not seen here\n",
               st->writer_pid);
    else if (st->writer_pid && st->read_only)
        printf("writer           pid %u: %llu append(s), %llu fsync(s), write p50 %llu us, p99 "
               "%llu us%s\n",
               st->writer_pid, (unsigned long long)st->appends, (unsigned long long)st->fsyncs,
               (unsigned long long)st->write_p50_us, (unsigned long long)st->write_p99_us,
               st->failed ? ", FAIL-STOPPED" : "");
    else if (st->writer_pid)
        printf("writer           pid %u\n", st->writer_pid);
    else
        printf("writer           none\n");
    printf("readers          %u\n", st->readers);
    printf("open             %s, %u segment(s), %u footer(s) used, %llu frame(s) scanned, %s in "
           "%llu us\n",
           r->checkpoint_used ? "checkpoint used" : "no checkpoint", r->segments, r->footers_used,
           (unsigned long long)r->frames_scanned, with_size(b3, sizeof b3, r->bytes_scanned),
           (unsigned long long)r->duration_us);
    if (!r->checkpoint_used && r->checkpoint_note[0])
        printf("checkpoint       not used: %s\n", r->checkpoint_note);
    if (r->loss_note[0])
        printf("LOST             %llu event(s) from global_seq %llu, %u segment(s): %s\n",
               (unsigned long long)r->events_lost, (unsigned long long)r->first_lost_seq,
               r->segments_lost, r->loss_note);
    if (r->bytes_cut || r->frames_cut)
        printf("torn tail        %llu byte(s), %llu frame(s) ignored\n",
               (unsigned long long)r->bytes_cut, (unsigned long long)r->frames_cut);
}

int cmd_stats(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"json", false}, {"prom", false}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    bool as_json = false, as_prom = false;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if (cli_arg_is(&arg, "json"))
            as_json = true;
        else
            as_prom = true;
    }
    if (r < 0) return CLI_EUSAGE;
    if (as_json && as_prom) return cli_fail(c, CLI_EUSAGE, "--json and --prom: choose one");
    bp_store *s;
    int code = cli_open_read(c, &s);
    if (code != CLI_OK) return code;
    if (as_prom) {
        char *text;
        bp_status rc = bp_store_prometheus(s, &text);
        if (rc) return cli_close(c, s, cli_fail_status(c, rc));
        fputs(text, stdout);
        bp_free(text);
        return cli_close(c, s, cli_finish_output(c, CLI_OK));
    }
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_id uuid;
    bp_status rc = bp_store_stats_get(s, &st);
    bp_store_open_report_get(s, &rep);
    bp_store_uuid(s, uuid.b);
    bp_store_diagnostics dg = BP_STORE_DIAGNOSTICS_INIT;
    if (!rc) rc = bp_store_diagnostics_get(s, &dg);
    size_t nseg = 0, seg_cap = 0; /* counted, then listed (again while more appear meanwhile) */
    bp_segment_info *segs = NULL;
    while (!rc && (rc = bp_store_segments_list(s, segs, seg_cap, &nseg)) == BP_ETOOBIG) {
        free(segs);
        seg_cap = nseg;
        if (!(segs = calloc(seg_cap, sizeof *segs))) cli_oom();
        segs[0].struct_size = sizeof *segs;
        rc = BP_OK;
    }
    size_t nck = 0; /* the durable positions: workers, reactors, relays (their lag) */
    bp_checkpoint_info *cks = NULL;
    if (!rc) rc = cli_checkpoints_list(s, &cks, &nck);
    if (rc) {
        code = cli_fail_status(c, rc);
    } else if (as_json) {
        json_t *o = stats_json(c, &uuid, &st, &rep);
        /* a reader beside a live writer: the writer's open (its figures are in st) */
        bp_store_open_report wr = BP_STORE_OPEN_REPORT_INIT;
        bool have_wr = st.read_only && bp_store_writer_report(s, &wr) == BP_OK;
        cli_json_set(o, "writer_open", have_wr ? cli_open_report_json(&wr) : json_null());
        cli_json_set(o, "diagnostics", diagnostics_json(&dg, segs, nseg));
        json_t *arr = json_array();
        if (!arr) cli_oom();
        for (size_t i = 0; i < nck; i++) {
            json_t *ck = json_object();
            if (!ck) cli_oom();
            cli_json_set(ck, "id", json_string(cks[i].id));
            cli_json_set(ck, "position", cli_json_u64(cks[i].position));
            cli_json_set(ck, "lag_events", cli_json_u64(cks[i].lag_events));
            cli_json_set(ck, "valid", json_boolean(cks[i].valid));
            if (json_array_append_new(arr, ck)) cli_oom();
        }
        cli_json_set(o, "checkpoints", arr);
        cli_print_json(o);
    } else {
        uint32_t wpid;
        print_stats_table(c, &uuid, &st, &rep, cli_writer_unshared(s, &st, &wpid));
        for (size_t i = 0; i < nseg; i++)
            printf("segment %06u   %llu event(s), seq %llu..%llu, %llu bytes%s\n", segs[i].segno,
                   (unsigned long long)segs[i].events, (unsigned long long)segs[i].first_seq,
                   (unsigned long long)segs[i].last_seq, (unsigned long long)segs[i].bytes,
                   segs[i].sealed ? ", sealed" : "");
        for (size_t i = 0; i < nck; i++)
            if (cks[i].valid)
                printf("checkpoint %-20s at seq %llu, %llu event(s) behind\n", cks[i].id,
                       (unsigned long long)cks[i].position, (unsigned long long)cks[i].lag_events);
            else
                printf("checkpoint %-20s unreadable (the worker will refuse to start)\n",
                       cks[i].id);
    }
    free(cks);
    free(segs);
    return cli_close(c, s, code);
}

/* -------------------------------------------------------------------- dump */

int cmd_dump(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"payloads", false}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    bool payloads = false;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        payloads = true;
    }
    if (r < 0) return CLI_EUSAGE;
    if (cli_check_dir(c) != CLI_OK) return CLI_EUSAGE;
    return cli_dump_segments(c->dir, payloads);
}
