/* batpak get / stream / query / tail: events as NDJSON, from a read-only open. */
#include "cli/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TAIL_DEFAULT_LIMIT 10
#define TAIL_DEFAULT_INTERVAL_MS 200

/* --------------------------------------------------------------------- get */

int cmd_get(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *id_text = NULL;
    int r;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (id_text) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        id_text = arg.value;
    }
    if (r < 0) return CLI_EUSAGE;
    if (!id_text) return cli_fail(c, CLI_EUSAGE, "needs an EVENT_ID");
    bp_id id;
    if (bp_id_parse(&id, id_text) != BP_OK)
        return cli_fail(c, CLI_EUSAGE, "'%s' is not an event id (a UUID)", id_text);
    bp_store *s;
    int code = cli_open_read(c, &s);
    if (code != CLI_OK) return code;
    bp_event *ev;
    bp_status rc = bp_get(s, &ev, &id);
    if (rc) {
        code = cli_fail_status(c, rc);
    } else {
        cli_print_json(cli_event_json(s, ev));
        bp_event_free(ev);
    }
    return cli_close(c, s, code);
}

/* ------------------------------------------------------------------ stream */

int cmd_stream(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"limit", true}, {"after", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    cli_region q;
    const char *entity = NULL;
    int r;
    cli_region_init(&q);
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (arg.name) {
            if (cli_region_option(c, &q, &arg) < 0) return CLI_EUSAGE;
        } else if (entity) {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        } else {
            entity = arg.value;
        }
    }
    if (r < 0) return CLI_EUSAGE;
    if (!entity) return cli_fail(c, CLI_EUSAGE, "needs an ENTITY");
    if (bp_coord_validate("entity", entity)) return cli_fail_status(c, BP_EINVAL);
    q.r.entity = entity;
    bp_store *s;
    int code = cli_open_read(c, &s);
    if (code != CLI_OK) return code;
    uint64_t head = 0;
    bp_status rc = bp_entity_head(s, &head, NULL, entity);
    if (rc)
        code = cli_fail_status(c, rc);
    else if (head == 0)
        code = cli_fail(c, CLI_ENOTFOUND, "entity '%s' has no events", entity);
    else
        code = cli_query_all(c, s, &q.r, BP_READ_FULL, q.limit, cli_print_event, s);
    return cli_close(c, s, code);
}

/* ------------------------------------------------------------------- query */

int cmd_query(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {CLI_REGION_OPTIONS, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    cli_region q;
    int r;
    cli_region_init(&q);
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if (cli_region_option(c, &q, &arg) < 0) return CLI_EUSAGE;
    }
    if (r < 0) return CLI_EUSAGE;
    bp_store *s;
    int code = cli_open_read(c, &s);
    if (code != CLI_OK) return code;
    code = cli_query_all(c, s, &q.r, BP_READ_FULL, q.limit, cli_print_event, s);
    return cli_close(c, s, code);
}

/* -------------------------------------------------------------------- tail */

typedef struct tail_args {
    cli_region q;
    bool follow;
    uint64_t interval_ms;
} tail_args;

static int parse_tail_args(cli_ctx *c, int argc, char **argv, tail_args *t) {
    static const cli_option opts[] = {
        CLI_REGION_OPTIONS, {"f", false}, {"follow", false}, {"interval", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r;
    cli_region_init(&t->q);
    t->follow = false;
    t->interval_ms = TAIL_DEFAULT_INTERVAL_MS;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (!arg.name) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        if (cli_arg_is(&arg, "f") || cli_arg_is(&arg, "follow")) {
            t->follow = true;
        } else if (cli_arg_is(&arg, "interval")) {
            if (cli_parse_number(c, "--interval", arg.value, 60000, &t->interval_ms))
                return CLI_EUSAGE;
            if (t->interval_ms < 10) return cli_fail(c, CLI_EUSAGE, "--interval: at least 10 ms");
        } else if (cli_region_option(c, &t->q, &arg) < 0) {
            return CLI_EUSAGE;
        }
    }
    if (r < 0) return CLI_EUSAGE;
    if (!t->q.has_limit) t->q.limit = TAIL_DEFAULT_LIMIT;
    return CLI_OK;
}

/* The global_seq of the last `cap` matching events, oldest first after the pass. */
typedef struct seq_ring {
    uint64_t *seq;
    uint64_t cap, seen;
} seq_ring;

static int ring_push(void *user, const bp_event *ev) {
    seq_ring *ring = user;
    ring->seq[ring->seen % ring->cap] = ev->global_seq;
    ring->seen++;
    return CLI_OK;
}

/* The highest published global_seq. Not the event count: a compaction leaves holes in the
 * seqs, so the count is below the last seq from then on. */
static bp_status published_seq(bp_store *s, uint64_t *seq) {
    bp_store_diagnostics d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    bp_status rc = bp_store_diagnostics_get(s, &d);
    *seq = d.published_seq;
    return rc;
}

/* Print the last q->limit matching events. *high receives the store's last global_seq. */
static int tail_backlog(const cli_ctx *c, bp_store *s, const cli_region *q, uint64_t *high) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_status rc = bp_store_stats_get(s, &st);
    if (!rc) rc = published_seq(s, high);
    if (rc) return cli_fail_status(c, rc);
    seq_ring ring = {NULL, q->limit < st.events ? q->limit : st.events, 0};
    if (ring.cap == 0) return CLI_OK;
    ring.seq = malloc(ring.cap * sizeof *ring.seq);
    if (!ring.seq) cli_oom();
    /* pass 1, index only: which events are the last ones */
    int code = cli_query_all(c, s, &q->r, BP_READ_INDEX_ONLY, UINT64_MAX, ring_push, &ring);
    if (code == CLI_OK && ring.seen) {
        uint64_t n = ring.seen < ring.cap ? ring.seen : ring.cap;
        bp_region from_oldest = q->r;
        from_oldest.from_seq = ring.seq[(ring.seen - n) % ring.cap];
        /* pass 2: read and print just those (the handle shows no new event before a refresh)
         */
        code = cli_query_all(c, s, &from_oldest, BP_READ_FULL, n, cli_print_event, s);
    }
    free(ring.seq);
    return code;
}

/* Follow: a cursor over the region on the read-only handle, which the writer's wake-ups
 * move (DIR/LIVE); each wait lasts at most interval_ms, after which the output is checked
 * (a closed pipe ends the command, as SIGINT and SIGTERM do). When the files change under the
 * handle (a compaction replaced them) the store is opened again, from the last event printed. */
static int tail_follow(const cli_ctx *c, const tail_args *t, bp_store *s, uint64_t high) {
    bp_cursor *cur = NULL;
    bp_status rc = bp_cursor_open(s, &cur, &t->q.r, high);
    int code = rc ? cli_fail_status(c, rc) : CLI_OK;
    cli_catch_stop_signals(); /* (a signal ends the command at the next wait's end) */
    /* a writer that shares no page: said once, when the same writer has held the store 5 s
     * without one (a writer sets its page up at the end of its open, which a recovery after
     * a crash may make long) */
    uint64_t unshared_since = 0;
    uint32_t unshared_pid = 0;
    bool said = false;
    while (code == CLI_OK && !cli_stop_flag) {
        const bp_event *evs[256];
        size_t n = 0;
        rc = bp_cursor_next(cur, evs, 256, &n, (uint32_t)t->interval_ms);
        uint32_t wpid = 0;
        if (rc != BP_ETIMEDOUT || said || !cli_writer_unshared(s, NULL, &wpid)) {
            unshared_pid = 0;
        } else {
            uint64_t now = cli_now_us();
            if (wpid != unshared_pid) {
                unshared_pid = wpid;
                unshared_since = now;
            }
            if (now - unshared_since >= 5000000u) {
                fprintf(stderr,
                        "batpak tail: the writer holding %s (pid %u) shares no live page "
                        "(DIR/LIVE: a batpak before 1.3, or it could not set the file up): what "
                        "it appends shows here only once a writer that shares one holds the "
                        "store\n",
                        c->dir, wpid);
                said = true;
            }
        }
        for (size_t i = 0; !rc && code == CLI_OK && i < n; i++) {
            code = cli_print_event(s, evs[i]);
            high = evs[i]->global_seq;
        }
        if (code == CLI_OK) code = cli_finish_output(c, CLI_OK);
        if (code == CLI_OK && rc == BP_ETIMEDOUT && cli_output_gone()) break; /* (as SIGPIPE) */
        if (code != CLI_OK || !rc || rc == BP_ETIMEDOUT) continue;
        if (rc != BP_ECORRUPT) {
            code = cli_fail_status(c, rc);
            break;
        }
        bp_cursor_free(cur);
        cur = NULL;
        code = cli_close(c, s, CLI_OK);
        s = NULL;
        if (code == CLI_OK) code = cli_open_read(c, &s);
        if (code == CLI_OK && (rc = bp_cursor_open(s, &cur, &t->q.r, high)))
            code = cli_fail_status(c, rc);
    }
    bp_cursor_free(cur);
    return s ? cli_close(c, s, code) : code;
}

int cmd_tail(cli_ctx *c, int argc, char **argv) {
    tail_args t;
    int code = parse_tail_args(c, argc, argv, &t);
    if (code != CLI_OK) return code;
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    uint64_t high = 0;
    code = tail_backlog(c, s, &t.q, &high);
    if (code != CLI_OK || !t.follow) return cli_close(c, s, code);
    return tail_follow(c, &t, s, high);
}

/* ------------------------------------------------------------ entities */

int cmd_entities(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {
        {"prefix", true}, {"after", true}, {"limit", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *prefix = NULL, *after = NULL;
    uint64_t limit = UINT64_MAX;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "prefix")) {
            prefix = arg.value;
        } else if (cli_arg_is(&arg, "after")) {
            after = arg.value;
        } else if (cli_arg_is(&arg, "limit")) {
            if ((code = cli_parse_number(c, "--limit", arg.value, UINT32_MAX, &limit)) != CLI_OK)
                return code;
        } else {
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        }
    }
    if (r < 0) return CLI_EUSAGE;
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    enum { PAGE = 256 };
    static bp_entity_info page[PAGE];
    page[0] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    char last[BP_COORD_MAX + 1];
    bp_status rc = BP_OK;
    for (uint64_t printed = 0; printed < limit;) {
        size_t n = 0;
        if ((rc = bp_entities_list(s, prefix, after, page, PAGE, &n))) break;
        for (size_t i = 0; i < n && printed < limit; i++, printed++) {
            json_t *o = json_object();
            cli_json_set(o, "entity", json_string(page[i].name));
            cli_json_set(o, "events", json_integer((json_int_t)page[i].events));
            cli_json_set(o, "clock", json_integer((json_int_t)page[i].clock));
            cli_print_json(o);
        }
        if (n < PAGE) break;
        snprintf(last, sizeof last, "%s", page[n - 1].name);
        after = last;
    }
    code = rc ? cli_fail_status(c, rc) : CLI_OK;
    return cli_close(c, s, cli_finish_output(c, code));
}
