/* batpak ui: a read-only page and its JSON endpoints, served from a reader handle
 * (libmicrohttpd, loopback only in this version). Every request refreshes the handle first,
 * so the page shows what a live writer has published. Nothing here can write to the store. */
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef BP_HAVE_UI
int cmd_ui(cli_ctx *c, int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail(c, CLI_EIO,
                    "ui: the web page is not compiled into this batpak (libmicrohttpd-dev was "
                    "missing at build time: scripts/install-deps.sh installs it; rebuild)");
}
#else
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#define UI_LIMIT_MAX 1000

typedef struct ui {
    bp_store *s;
    pthread_mutex_t mu; /* one request at a time reads the handle (and refreshes it) */
} ui;

static const char PAGE[] =
    "<!doctype html><html><head><meta charset=utf-8><title>batpak</title><style>"
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:"
    "collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;"
    "vertical-align:top}code{font-size:12px}.ok{color:#080}.bad{color:#c00}</style></head>"
    "<body><h1>batpak</h1><div id=store></div><h2>Entities</h2><input id=prefix "
    "placeholder='prefix'> <button id=find>find</button><table id=entities></table>"
    "<h2 id=title></h2><table id=stream></table><script>\n"
    "const $=id=>document.getElementById(id);\n"
    "async function get(u){const r=await fetch(u);const j=await r.json();"
    "if(!r.ok)throw new Error(j.error);return j}\n"
    "async function store(){const s=await get('/api/store');$('store').textContent="
    "`${s.events} events, ${s.entities} entities, ${s.segments} segments, writer `+"
    "(s.writer_pid?`pid ${s.writer_pid}`:'none')+`, ${s.readers} reader(s)`}\n"
    "async function entities(){const p=encodeURIComponent($('prefix').value);"
    "const l=await get('/api/entities?limit=100&prefix='+p);$('entities').innerHTML="
    "'<tr><th>entity<th>events<th>clock'+l.entities.map(e=>`<tr><td><a href='#' "
    "data-e='${encodeURIComponent(e.entity)}'>${e.entity.replace(/</g,'&lt;')}</a><td>"
    "${e.events}<td>${e.clock}`).join('');for(const a of $('entities')."
    "querySelectorAll('a'))a.onclick=ev=>{ev.preventDefault();stream("
    "decodeURIComponent(a.dataset.e))}}\n"
    "async function stream(e){const l=await get('/api/stream?limit=100&entity='+"
    "encodeURIComponent(e));$('title').textContent=e;$('stream').innerHTML="
    "'<tr><th>clock<th>seq<th>time<th>kind<th>chain<th>payload'+l.events.map(v=>"
    "`<tr><td>${v.clock}<td>${v.global_seq}<td>${new Date(v.time_ms).toISOString()}<td>"
    "${v.kind}<td class=${v.chain==='ok'?'ok':v.chain==='broken'?'bad':''}>${v.chain}<td>"
    "<code>${JSON.stringify(v.payload===undefined?null:v.payload).replace(/</g,'&lt;')}"
    "</code>`).join('')}\n"
    "$('find').onclick=entities;store();entities();\n"
    "</script></body></html>\n";

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *v) {
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!text) return MHD_NO;
    return reply(conn, status, "application/json", text);
}

static enum MHD_Result fail(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result fail(struct MHD_Connection *conn, unsigned status, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_json(conn, status, json_pack("{s:s}", "error", msg));
}

/* Query parameter name as a number in 0..max (absent: dflt); false with the reply queued. */
static bool param_u64(struct MHD_Connection *conn, const char *name, uint64_t max, uint64_t dflt,
                      uint64_t *out, enum MHD_Result *ret) {
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    *out = dflt;
    if (!v) return true;
    if (!cli_parse_u64(v, max, out)) {
        *ret = fail(conn, 400, "%s: '%s' is not a number in 0..%llu", name, v,
                    (unsigned long long)max);
        return false;
    }
    return true;
}

static json_t *store_json(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_store_diagnostics dg = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_stats_get(s, &st) || bp_store_diagnostics_get(s, &dg)) return NULL;
    bp_id uuid;
    bp_store_uuid(s, uuid.b);
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:s}", "store_uuid",
                     cli_json_id(&uuid), "events", (json_int_t)st.events, "entities",
                     (json_int_t)st.entities, "segments", (json_int_t)dg.segments, "bytes",
                     (json_int_t)st.bytes_on_disk, "writer_pid", (json_int_t)st.writer_pid,
                     "readers", (json_int_t)st.readers, "failed", dg.failed, "failed_msg",
                     dg.failed_msg);
}

static enum MHD_Result entities(struct MHD_Connection *conn, bp_store *s) {
    enum MHD_Result ret = MHD_NO;
    uint64_t limit;
    if (!param_u64(conn, "limit", UI_LIMIT_MAX, 100, &limit, &ret)) return ret;
    const char *prefix = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "prefix");
    const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
    bp_entity_info *page = calloc(limit ? limit : 1, sizeof *page);
    if (!page) return MHD_NO;
    page[0] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    size_t n = 0;
    bp_status rc = bp_entities_list(s, prefix && *prefix ? prefix : NULL,
                                    after && *after ? after : NULL, page, limit, &n);
    if (rc) {
        free(page);
        return fail(conn, rc == BP_EINVAL ? 400 : 500, "%s", bp_last_error());
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:I, s:I}", "entity", page[i].name, "events",
                                           (json_int_t)page[i].events, "clock",
                                           (json_int_t)page[i].clock));
    free(page);
    return reply_json(conn, 200, json_pack("{s:o}", "entities", a));
}

/* One entity's events from clock after + 1, each with its chain mark: "ok" when its
 * prev_hash is the event_hash of the event before it on the page, "broken" when not, "start"
 * for the entity's first event, "unchecked" for the page's first otherwise. */
static enum MHD_Result stream(struct MHD_Connection *conn, bp_store *s) {
    enum MHD_Result ret = MHD_NO;
    uint64_t limit, after;
    const char *entity = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "entity");
    if (!entity || !*entity) return fail(conn, 400, "entity: missing");
    if (!param_u64(conn, "limit", UI_LIMIT_MAX, 100, &limit, &ret) ||
        !param_u64(conn, "after", UINT64_MAX, 0, &after, &ret))
        return ret;
    uint64_t head = 0;
    bp_hash h;
    bp_status rc = bp_entity_head(s, &head, &h, entity);
    if (rc == BP_EINVAL) return fail(conn, 400, "%s", bp_last_error());
    if (rc == BP_ENOTFOUND || (!rc && head == 0))
        return fail(conn, 404, "entity '%s': no events", entity);
    if (rc) return fail(conn, 500, "%s", bp_last_error());
    bp_iter *it;
    if ((rc = bp_stream(s, &it, entity, BP_READ_FULL)))
        return fail(conn, rc == BP_EINVAL ? 400 : 500, "%s", bp_last_error());
    json_t *a = json_array();
    const bp_event *ev;
    bp_hash prev;
    bool have_prev = false;
    while (json_array_size(a) < limit && (rc = bp_iter_next(it, &ev)) == BP_OK) {
        if (ev->clock <= after) continue;
        json_t *o = cli_event_json(s, ev);
        const char *mark = ev->clock == 1 && !have_prev               ? "start"
                           : !have_prev                               ? "unchecked"
                           : memcmp(prev.b, ev->prev_hash.b, 32) == 0 ? "ok"
                                                                      : "broken";
        json_object_set_new(o, "chain", json_string(mark));
        json_object_set_new(o, "time_ms", json_integer((json_int_t)BP_HLC_WALL_MS(ev->hlc)));
        json_array_append_new(a, o);
        prev = ev->event_hash;
        have_prev = true;
    }
    bp_iter_free(it);
    if (rc != BP_OK && rc != BP_DONE) {
        json_decref(a);
        return fail(conn, 500, "%s", bp_last_error());
    }
    return reply_json(conn, 200,
                      json_pack("{s:s, s:I, s:o}", "entity", entity, "head_clock", (json_int_t)head,
                                "events", a));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state) {
    (void)version;
    (void)data;
    ui *u = cls;
    if (!*state) { /* (the first call of a request: its headers) */
        *state = u;
        if (*size) return MHD_NO;
        return MHD_YES;
    }
    if (*size) { /* a body: nothing here takes one */
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return fail(conn, 405, "%s: the page is read-only (GET only)", method);
    if (!strcmp(url, "/")) {
        char *page = strdup(PAGE);
        return page ? reply(conn, 200, "text/html; charset=utf-8", page) : MHD_NO;
    }
    pthread_mutex_lock(&u->mu);
    uint64_t pub;
    (void)bp_store_refresh(u->s, &pub); /* (a failed refresh shows what it had) */
    enum MHD_Result ret;
    if (!strcmp(url, "/api/store")) {
        json_t *o = store_json(u->s);
        ret = o ? reply_json(conn, 200, o) : fail(conn, 500, "%s", bp_last_error());
    } else if (!strcmp(url, "/api/entities")) {
        ret = entities(conn, u->s);
    } else if (!strcmp(url, "/api/stream")) {
        ret = stream(conn, u->s);
    } else {
        ret = fail(conn, 404, "%.200s: no such page (/, /api/store, /api/entities, /api/stream)",
                   url);
    }
    pthread_mutex_unlock(&u->mu);
    return ret;
}

int cmd_ui(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"listen", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *listen = "127.0.0.1:8470";
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "listen"))
            listen = arg.value;
        else
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
    }
    if (r < 0) return CLI_EUSAGE;
    const char *colon = strrchr(listen, ':');
    char host[64];
    uint64_t port = 0;
    if (!colon || (size_t)(colon - listen) >= sizeof host ||
        !cli_parse_u64(colon + 1, 65535, &port))
        return cli_fail(c, CLI_EUSAGE, "--listen '%s': expected HOST:PORT (127.0.0.1:8470)",
                        listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return cli_fail(c, CLI_EUSAGE, "--listen '%s': '%s' is not an IPv4 address", listen, host);
    if ((ntohl(sin.sin_addr.s_addr) >> 24) != 127)
        return cli_fail(c, CLI_EUSAGE,
                        "--listen '%s': only loopback (127.x.x.x) in this version: a page "
                        "reachable from elsewhere needs a token, which it does not have yet",
                        listen);
    ui u;
    if ((code = cli_open_read(c, &u.s)) != CLI_OK) return code;
    pthread_mutex_init(&u.mu, NULL);
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old); /* (the server's threads inherit it) */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, &u,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_mutex_destroy(&u.mu);
        return cli_close(
            c, u.s,
            cli_fail(c, CLI_EIO, "ui: cannot listen on %s (in use, or not allowed)", listen));
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    printf("{\"url\":\"http://%s:%u/\"}\n", host, bound);
    fflush(stdout);
    fprintf(stderr, "batpak ui: serving %s read-only at http://%s:%u/ (Ctrl-C stops)\n",
            bp_store_dir(u.s), host, bound);
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&u.mu);
    return cli_close(c, u.s, CLI_OK);
}
#endif
