/* batpak ui: the live tail (server-sent events over a cursor on a reader handle of its own) and
 * verify run from the page (a thread with a reader handle of its own, and its progress). */
#include "cli/ui.h"

#ifdef BP_HAVE_UI
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------- tail */

#define TAIL_WAIT_MS 1000 /* longest wait for an event: how soon a stop is seen */
#define TAIL_KEEPALIVE_US                                                                          \
    10000000u /* a comment line when nothing came for this long: a                                 \
                 closed connection is found out at that write */

/* One live tail: its own reader handle and a cursor over the region, from after `high`.
 * Invariant: buf[off, len) is what the connection has still to be sent. */
typedef struct tail {
    ui *u;
    cli_ctx ctx;
    char err[512];
    bp_store *s;
    bp_cursor *cur;
    cli_region q;
    char *texts[3]; /* copies of the region's entity, entity prefix and scope */
    uint64_t high;  /* global_seq of the last event sent (or where the tail started) */
    char *buf;
    size_t len, off, cap;
    uint64_t last_us;     /* when something was last put in buf */
    uint64_t reopened_at; /* the high at which the handle was last opened again (a
                             BP_ECORRUPT); UINT64_MAX: never */
    bool ending;          /* an error event is the last thing sent */
} tail;

static void put(tail *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tail *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            break;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *b = realloc(t->buf, cap);
        if (!b) cli_oom();
        t->buf = b;
        t->cap = cap;
    }
    t->last_us = cli_now_us();
}

/* Say why the tail ends, as its last event (the page shows it; EventSource reconnects). */
static void put_error(tail *t, const char *msg) {
    json_t *o = json_pack("{s:o}", "error", cli_json_text(msg, strlen(msg)));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) cli_oom();
    put(t, "event: error\ndata: %s\n\n", text);
    free(text);
    t->ending = true;
}

/* The writer compacted (the files changed under the handle): open again, from t->high. */
static bool tail_reopen(tail *t) {
    bp_cursor_free(t->cur);
    t->cur = NULL;
    cli_close(&t->ctx, t->s, CLI_OK);
    t->s = NULL;
    if (cli_open_read(&t->ctx, &t->s) != CLI_OK) return false;
    if (bp_cursor_open(t->s, &t->cur, &t->q.r, t->high)) {
        snprintf(t->err, sizeof t->err, "%s", bp_last_error());
        return false;
    }
    return true;
}

/* Fill t->buf with the next events (or a keep-alive, or the reason it ends). */
static void tail_fill(tail *t) {
    while (t->off == t->len && !t->ending && !atomic_load(&t->u->stopping)) {
        t->off = t->len = 0;
        const bp_event *evs[64];
        size_t n = 0;
        bp_status rc = bp_cursor_next(t->cur, evs, 64, &n, TAIL_WAIT_MS);
        if (rc == BP_ETIMEDOUT) {
            if (cli_now_us() - t->last_us >= TAIL_KEEPALIVE_US) put(t, ": keep-alive\n\n");
            continue;
        }
        if (rc == BP_ECORRUPT && t->high != t->reopened_at) {
            /* the files changed under the handle (a compaction): open again, once per place
             * (the same error again there is a damaged frame: said, and the tail ends) */
            t->reopened_at = t->high;
            if (tail_reopen(t)) continue;
        }
        if (rc) {
            put_error(t, t->err[0] ? t->err : bp_last_error());
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *o = ui_event_json(t->s, evs[i]);
            char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(o);
            if (!text) cli_oom();
            put(t, "id: %llu\ndata: %s\n\n", (unsigned long long)evs[i]->global_seq, text);
            free(text);
            t->high = evs[i]->global_seq;
        }
    }
}

static ssize_t tail_read(void *cls, uint64_t pos, char *out, size_t max) {
    tail *t = cls;
    (void)pos;
    tail_fill(t);
    if (t->off == t->len) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = t->len - t->off < max ? t->len - t->off : max;
    memcpy(out, t->buf + t->off, n);
    t->off += n;
    return (ssize_t)n;
}

static void tail_free(void *cls) {
    tail *t = cls;
    bp_cursor_free(t->cur);
    if (t->s) cli_close(&t->ctx, t->s, CLI_OK);
    for (int i = 0; i < 3; i++)
        free(t->texts[i]);
    free(t->buf);
    atomic_fetch_sub(&t->u->tails, 1);
    free(t);
}

/* The region of the query string: the filters of `batpak tail`, and after=SEQ. */
typedef struct tail_args {
    tail *t;
    bool bad;
    bool has_after;
    uint64_t after;
    char msg[600];
} tail_args;

static enum MHD_Result tail_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
    (void)kind;
    tail_args *a = cls;
    tail *t = a->t;
    static const char *const allowed[] = {"entity",   "entity-prefix", "scope", "kind",
                                          "category", "since",         "until", NULL};
    if (a->bad || !value || !*value) return MHD_YES; /* an empty field filters nothing */
    if (!strcmp(key, "after")) {
        a->has_after = true;
        if (!cli_parse_u64(value, UINT64_MAX, &a->after))
            snprintf(a->msg, sizeof a->msg, "after: '%.100s' is not a global_seq", value),
                a->bad = true;
        return MHD_YES;
    }
    int i = 0;
    while (allowed[i] && strcmp(allowed[i], key))
        i++;
    if (!allowed[i]) {
        snprintf(a->msg, sizeof a->msg,
                 "'%.100s': not a filter of the tail (entity, entity-prefix, scope, kind, "
                 "category, since, until, after)",
                 key);
        a->bad = true;
        return MHD_YES;
    }
    if (i <= 2) { /* entity, entity-prefix, scope: strings the region points at, kept */
        free(t->texts[i]);
        if (!(t->texts[i] = strdup(value))) cli_oom();
        value = t->texts[i];
    }
    cli_arg arg = {key, value};
    if (cli_region_option(&t->ctx, &t->q, &arg) < 0) {
        snprintf(a->msg, sizeof a->msg, "%s", t->err);
        a->bad = true;
    }
    return MHD_YES;
}

/* GET /api/tail?FILTERS&after=SEQ: text/event-stream of the region's new events, each
 * "id: GLOBAL_SEQ" and "data: EVENT" (as /api/stream gives them), from after SEQ (default:
 * the last published; a reconnecting EventSource's Last-Event-ID wins). First an event
 * "start" with {"after"}. */
enum MHD_Result ui_api_tail(ui_req *q) {
    ui *u = q->u;
    if (atomic_fetch_add(&u->tails, 1) >= UI_TAILS_MAX) {
        atomic_fetch_sub(&u->tails, 1);
        return ui_fail(q->conn, 503, "%d live tails are open already: close one", UI_TAILS_MAX);
    }
    tail *t = calloc(1, sizeof *t);
    if (!t) cli_oom();
    t->u = u;
    t->reopened_at = UINT64_MAX;
    t->ctx = *u->c;
    t->ctx.errbuf = t->err;
    t->ctx.errcap = sizeof t->err;
    cli_region_init(&t->q);
    tail_args a = {t, false, false, 0, ""};
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, tail_arg, &a);
    const char *last = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Last-Event-ID");
    uint64_t resume;
    if (last && cli_parse_u64(last, UINT64_MAX, &resume)) a.has_after = true, a.after = resume;
    if (a.bad) {
        tail_free(t);
        return ui_fail(q->conn, 400, "%s", a.msg);
    }
    unsigned status = 500;
    if (cli_open_read(&t->ctx, &t->s) == CLI_OK) {
        bp_store_diagnostics dg = BP_STORE_DIAGNOSTICS_INIT;
        bp_status rc = bp_store_diagnostics_get(t->s, &dg);
        t->high = a.has_after ? a.after : dg.published_seq;
        if (!rc) rc = bp_cursor_open(t->s, &t->cur, &t->q.r, t->high);
        if (rc) {
            status = rc == BP_EINVAL ? 400 : 500;
            snprintf(t->err, sizeof t->err, "%s", bp_last_error());
        }
    }
    if (!t->cur) {
        char msg[sizeof t->err];
        memcpy(msg, t->err, sizeof msg);
        tail_free(t);
        return ui_fail(q->conn, status, "%s", msg);
    }
    put(t, "retry: 2000\nevent: start\ndata: {\"after\":%llu}\n\n", (unsigned long long)t->high);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, tail_read, t, tail_free);
    if (!r) {
        tail_free(t);
        return MHD_NO;
    }
    ui_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result ret = MHD_queue_response(q->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ----------------------------------------------------------------- verify */

void ui_verify_init(ui_verify *v) {
    memset(v, 0, sizeof *v);
    pthread_mutex_init(&v->mu, NULL);
}

static void verify_progress(void *ctx, uint64_t done, uint64_t total) {
    ui_verify *v = ctx;
    pthread_mutex_lock(&v->mu);
    v->done = done;
    v->total = total;
    pthread_mutex_unlock(&v->mu);
}

/* The verify thread: as `batpak verify`, on a reader handle of its own. */
static void *verify_main(void *arg) {
    ui *u = arg;
    ui_verify *v = &u->verify;
    char err[1024] = "";
    cli_ctx ctx = *u->c;
    ctx.errbuf = err;
    ctx.errcap = sizeof err;
    bp_store *s;
    json_t *res;
    if (cli_open_read(&ctx, &s) != CLI_OK) {
        res = json_pack("{s:o}", "error", cli_json_text(err, strlen(err)));
    } else {
        bp_verify_report rep = BP_VERIFY_REPORT_INIT;
        bp_store_open_report orep = BP_STORE_OPEN_REPORT_INIT;
        bp_status rc;
        res = cli_verify_run(s, verify_progress, v, &rep, &orep, &rc);
        if (!res)
            res = json_pack("{s:o}", "error",
                            cli_json_text(bp_last_error(), strlen(bp_last_error())));
        cli_close(&ctx, s, CLI_OK);
    }
    if (!res) cli_oom();
    pthread_mutex_lock(&v->mu);
    v->result = res;
    v->running = false;
    v->finished_us = cli_now_us();
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

/* GET /api/verify: {"state": "idle" | "running" | "done", "runs", "done_bytes", "total_bytes",
 * "elapsed_ms", "result"}; POST /api/verify starts one (409 while one runs). */
enum MHD_Result ui_api_verify(ui_req *q, bool start) {
    ui_verify *v = &q->u->verify;
    pthread_mutex_lock(&v->mu);
    if (start && v->running) {
        pthread_mutex_unlock(&v->mu);
        return ui_fail(q->conn, 409, "verify is running already: wait for its result");
    }
    if (start) {
        if (v->started) { /* (not running: it has left its last locked step, so no wait) */
            pthread_join(v->thread, NULL);
            v->started = false;
        }
        json_decref(v->result);
        v->result = NULL;
        v->done = v->total = 0;
        v->running = v->started = true;
        v->runs++;
        v->started_us = cli_now_us();
        if (pthread_create(&v->thread, NULL, verify_main, q->u)) {
            v->running = v->started = false;
            pthread_mutex_unlock(&v->mu);
            return ui_fail(q->conn, 503, "verify: cannot start a thread");
        }
    }
    const char *state = v->running ? "running" : v->result ? "done" : "idle";
    uint64_t end = v->running ? cli_now_us() : v->finished_us;
    json_t *o = json_pack(
        "{s:s, s:i, s:o, s:o, s:o, s:O?}", "state", state, "runs", (int)v->runs, "done_bytes",
        cli_json_u64(v->done), "total_bytes", cli_json_u64(v->total), "elapsed_ms",
        cli_json_u64(v->started_us ? (end - v->started_us) / 1000 : 0), "result", v->result);
    pthread_mutex_unlock(&v->mu);
    return ui_reply_json(q->conn, start ? 202 : 200, o);
}

void ui_verify_finish(ui_verify *v) {
    pthread_mutex_lock(&v->mu);
    bool started = v->started;
    if (v->running)
        fprintf(stderr, "batpak ui: waiting for the verify started from the page to end "
                        "(Ctrl-C again stops at once: it writes nothing)\n");
    pthread_mutex_unlock(&v->mu);
    if (started) pthread_join(v->thread, NULL);
    json_decref(v->result);
    v->result = NULL;
    pthread_mutex_destroy(&v->mu);
}
#else
typedef int ui_live_not_built; /* (ISO C: no empty translation unit) */
#endif
