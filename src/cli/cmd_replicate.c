/* batpak relay / follow: replication through NATS JetStream (batpak/replicate.h). */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int not_built(cli_ctx *c) {
    return cli_fail(c, CLI_EIO,
                    "replication is not compiled into this batpak (libnats-dev was missing at "
                    "build time: scripts/install-deps.sh installs it; rebuild)");
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The options both commands take: where to connect, which stream, how much at a time and
 * whether to stop once caught up. */
typedef struct nats_args {
    const char *url, *stream;
    uint32_t batch;
    bool until;
} nats_args;

/* Apply arg when it is one of nats_args' options: 1 applied, 0 not one, -1 error printed. */
static int nats_option(const cli_ctx *c, const cli_arg *arg, nats_args *n) {
    uint64_t batch;
    if (cli_arg_is(arg, "nats"))
        n->url = arg->value;
    else if (cli_arg_is(arg, "stream"))
        n->stream = arg->value;
    else if (cli_arg_is(arg, "until-caught-up"))
        n->until = true;
    else if (cli_arg_is(arg, "batch")) {
        if (cli_parse_number(c, "--batch", arg->value, 4096, &batch)) return -1;
        n->batch = (uint32_t)batch;
    } else
        return 0;
    return 1;
}

/* The required ones are there (else the usage error is printed). */
static int nats_required(const cli_ctx *c, const nats_args *n) {
    if (!n->url) return cli_fail(c, CLI_EUSAGE, "--nats URL is required (nats://127.0.0.1:4222)");
    if (!n->stream) return cli_fail(c, CLI_EUSAGE, "--stream NAME is required");
    return CLI_OK;
}

int cmd_relay(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {CLI_REGION_OPTIONS,         {"nats", true},
                                      {"stream", true},           {"subject-prefix", true},
                                      {"checkpoint-id", true},    {"batch", true},
                                      {"until-caught-up", false}, {NULL, false}};
    if (!bp_replication_available()) return not_built(c);
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    cli_region q;
    cli_region_init(&q);
    bp_relay_config cfg = BP_RELAY_CONFIG_INIT;
    nats_args n = {NULL, NULL, 0, false};
    int r, k;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if ((k = nats_option(c, &arg, &n)) < 0) return CLI_EUSAGE;
        if (k) continue;
        if (cli_arg_is(&arg, "subject-prefix"))
            cfg.subject_prefix = arg.value;
        else if (cli_arg_is(&arg, "checkpoint-id"))
            cfg.checkpoint_id = arg.value;
        else if (cli_region_option(c, &q, &arg) < 0)
            return CLI_EUSAGE;
    }
    if (r < 0 || nats_required(c, &n) != CLI_OK) return CLI_EUSAGE;
    cfg.url = n.url;
    cfg.stream = n.stream;
    cfg.batch = n.batch;
    if (q.has_limit || q.has_after)
        return cli_fail(c, CLI_EUSAGE, "--limit and --after do not apply to a relay");
    cfg.region = &q.r;
    bp_store *s;
    int code = cli_open_write_lifecycle(c, &s, false);
    if (code != CLI_OK) return code;
    cli_catch_stop_signals();
    uint64_t t0 = cli_now_us();
    bp_relay *rl;
    bp_status rc = bp_relay_start(s, &rl, &cfg);
    if (rc) return cli_close(c, s, cli_fail_status(c, rc));
    /* the newest event of the region: what "caught up" means while nothing else writes */
    uint64_t target;
    code = cli_region_last_seq(c, s, &q.r, &target);
    bp_relay_stats st = BP_RELAY_STATS_INIT;
    for (; code == CLI_OK && !cli_stop_flag;) {
        bp_relay_stats_get(rl, &st);
        if (!st.running) break;
        if (n.until && st.position >= target) break;
        if (target) cli_progress_events("relay", st.position, target);
        sleep_ms(50);
    }
    if (target) cli_progress_events("relay", target, target);
    bp_relay_stats_get(rl, &st);
    rc = bp_relay_stop(rl);
    if (rc && code == CLI_OK) code = cli_fail_status(c, rc);
    if (code == CLI_OK) {
        uint64_t t1 = cli_now_us();
        json_t *o = json_object();
        if (!o) cli_oom();
        cli_json_set(o, "stream", json_string(cfg.stream));
        cli_json_set(o, "position", cli_json_u64(st.position));
        cli_json_set(o, "published", cli_json_u64(st.published));
        cli_json_set(o, "duplicates", cli_json_u64(st.duplicates));
        cli_json_set(o, "retries", cli_json_u64(st.retries));
        cli_json_set(o, "caught_up", json_boolean(st.position >= target));
        cli_json_set(o, "stopped_by_signal", json_boolean(cli_stop_flag != 0));
        cli_json_set(o, "duration_us", cli_json_u64(t1 - t0));
        cli_print_json(o);
    }
    return cli_close(c, s, cli_finish_output(c, code));
}

int cmd_follow(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"nats", true},
                                      {"stream", true},
                                      {"batch", true},
                                      {"until-caught-up", false},
                                      {NULL, false}};
    if (!bp_replication_available()) return not_built(c);
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    nats_args n = {NULL, NULL, 0, false};
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if (nats_option(c, &arg, &n) < 0) return CLI_EUSAGE; /* every option is one */
    }
    if (r < 0 || nats_required(c, &n) != CLI_OK) return CLI_EUSAGE;
    bp_follow_config cfg = BP_FOLLOW_CONFIG_INIT;
    cfg.url = n.url;
    cfg.stream = n.stream;
    cfg.batch = n.batch;
    cfg.until_caught_up = n.until;
    if (cli_check_dir(c)) return CLI_EUSAGE;
    cli_catch_stop_signals();
    cfg.stop = &cli_stop_int;
    bp_follow_report rep = BP_FOLLOW_REPORT_INIT;
    bp_status rc = bp_follow(&rep, c->dir, &cfg);
    if (rc) return cli_fail_status(c, rc);
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "replica", cli_json_text(c->dir, strlen(c->dir)));
    cli_json_set(o, "stream", json_string(cfg.stream));
    cli_json_set(o, "messages", cli_json_u64(rep.messages));
    cli_json_set(o, "applied", cli_json_u64(rep.applied));
    cli_json_set(o, "skipped", cli_json_u64(rep.skipped));
    cli_json_set(o, "stream_seq", cli_json_u64(rep.stream_seq));
    cli_json_set(o, "global_seq", cli_json_u64(rep.global_seq));
    cli_json_set(o, "duration_us", cli_json_u64(rep.duration_us));
    cli_print_json(o);
    return cli_finish_output(c, CLI_OK);
}
