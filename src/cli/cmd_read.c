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
        /* pass 2: read and print just those; nothing can be appended in between (we hold the lock)
         */
        code = cli_query_all(c, s, &from_oldest, BP_READ_FULL, n, cli_print_event, s);
    }
    free(ring.seq);
    return code;
}

/* What the segment files look like; a change means a writer has been at work. */
typedef struct segments_signature {
    uint64_t files, bytes, newest_mtime_ns;
} segments_signature;

static segments_signature read_signature(const char *dir) {
    segments_signature sig = {0, 0, 0};
    char path[4096];
    snprintf(path, sizeof path, "%s/segments", dir);
    DIR *d = opendir(path);
    if (!d) return sig;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0) continue;
        uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
        sig.files++;
        sig.bytes += (uint64_t)st.st_size;
        if (mtime > sig.newest_mtime_ns) sig.newest_mtime_ns = mtime;
    }
    closedir(d);
    return sig;
}

static bool same_signature(const segments_signature *a, const segments_signature *b) {
    return a->files == b->files && a->bytes == b->bytes && a->newest_mtime_ns == b->newest_mtime_ns;
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One poll: print matching events above *high (the store opened read-only beside its writer). */
static int tail_poll(const cli_ctx *c, const cli_region *q, uint64_t *high, bool *read) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.create = false;
    o.read_only = true;
    o.accept_loss = c->accept_loss;
    bp_store *s;
    bp_status rc = bp_store_open(&s, c->dir, &o);
    *read = false; /* (a read-only open takes no lock: a live writer does not stop it) */
    if (rc) return cli_fail_status(c, rc);
    uint64_t last = 0;
    if (!(rc = cli_register_types(s))) rc = published_seq(s, &last);
    int code = rc ? cli_fail_status(c, rc) : CLI_OK;
    if (code == CLI_OK && last > *high) {
        bp_region r = q->r;
        if (*high + 1 > r.from_seq) r.from_seq = *high + 1;
        code = cli_query_all(c, s, &r, BP_READ_FULL, UINT64_MAX, cli_print_event, s);
        *high = last;
    }
    *read = true;
    return cli_close(c, s, code);
}

static int tail_follow(const cli_ctx *c, const tail_args *t, uint64_t high) {
    segments_signature seen = read_signature(c->dir);
    for (;;) {
        if (cli_finish_output(c, CLI_OK) != CLI_OK) return CLI_EIO;
        sleep_ms(t->interval_ms);
        segments_signature now = read_signature(c->dir);
        if (same_signature(&now, &seen)) continue;
        bool read;
        int code = tail_poll(c, &t->q, &high, &read);
        if (code != CLI_OK) return code;
        if (read) seen = now;
    }
}

int cmd_tail(cli_ctx *c, int argc, char **argv) {
    tail_args t;
    int code = parse_tail_args(c, argc, argv, &t);
    if (code != CLI_OK) return code;
    bp_store *s;
    if ((code = cli_open_read(c, &s)) != CLI_OK) return code;
    uint64_t high = 0;
    code = tail_backlog(c, s, &t.q, &high);
    code = cli_close(c, s, code);
    if (code != CLI_OK || !t.follow) return code;
    return tail_follow(c, &t, high);
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
