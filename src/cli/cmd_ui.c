/* batpak ui: a read-only page and its JSON endpoints (libmicrohttpd; ui.h). Loopback by default,
 * where it answers only requests addressed to a loopback name (no other site's page can reach
 * it by rebinding a name). --allow-remote listens elsewhere: every request then needs the
 * session cookie that the one-time login URL printed at start sets. */
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
#include "cli/ui.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>

extern const char ui_page_html[]; /* src/cli/ui_page.html, embedded by cmake/embed.cmake */

/* ---------------------------------------------------------------- replies */

void ui_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

enum MHD_Result ui_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                         char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    ui_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result ui_reply_json(struct MHD_Connection *conn, unsigned status, json_t *v) {
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!text) cli_oom();
    return ui_reply(conn, status, "application/json", text);
}

enum MHD_Result ui_fail(struct MHD_Connection *conn, unsigned status, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ui_reply_json(conn, status,
                         json_pack("{s:o}", "error", cli_json_text(msg, strlen(msg))));
}

bool ui_param_u64(ui_req *q, const char *name, uint64_t max, uint64_t dflt, uint64_t *out,
                  enum MHD_Result *ret) {
    const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
    *out = dflt;
    if (!v) return true;
    if (!cli_parse_u64(v, max, out)) {
        *ret = ui_fail(q->conn, 400, "%s: '%.100s' is not a number in 0..%llu", name, v,
                       (unsigned long long)max);
        return false;
    }
    return true;
}

/* ----------------------------------------------------------------- access */

static bool random_hex(char out[UI_TOKEN_HEX + 1]) {
    uint8_t b[UI_TOKEN_HEX / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return false;
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return true;
}

/* Compare a token without leaking where it differs. */
static bool same_token(const char *given, const char *want) {
    if (!given || strlen(given) != UI_TOKEN_HEX || strlen(want) != UI_TOKEN_HEX) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < UI_TOKEN_HEX; i++)
        d |= (unsigned char)(given[i] ^ want[i]);
    return d == 0;
}

/* Print the login URL (u->auth_mu held). */
static void print_login(const ui *u) {
    printf("{\"login\":\"http://%s:%u/login?token=%s\"}\n", u->host, u->port, u->login);
    fflush(stdout);
}

/* A loopback server answers only requests addressed to a loopback name. */
static bool host_is_loopback(const char *host) {
    if (!host) return true; /* (HTTP/1.0 without Host) */
    char name[128];
    snprintf(name, sizeof name, "%s", host);
    char *colon = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (colon && name[0] == '[') colon = colon[1] == ':' ? colon + 1 : NULL;
    if (colon) *colon = 0;
    struct in_addr a;
    return !strcmp(name, "localhost") || !strcmp(name, "[::1]") ||
           (inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);
}

/* GET /login?token=T: T is the login token printed last; it sets a session cookie and is
 * spent (a new one is printed for the next browser). */
static enum MHD_Result login(ui_req *q) {
    ui *u = q->u;
    const char *token = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "token");
    char session[UI_TOKEN_HEX + 1];
    pthread_mutex_lock(&u->auth_mu);
    bool ok = same_token(token, u->login) && random_hex(session) && random_hex(u->login);
    if (ok) {
        if (u->nsessions == UI_SESSIONS_MAX) { /* the oldest session goes */
            memmove(u->sessions[0], u->sessions[1], sizeof u->sessions[0] * (UI_SESSIONS_MAX - 1));
            u->nsessions--;
        }
        memcpy(u->sessions[u->nsessions++], session, sizeof session);
        print_login(u);
    }
    pthread_mutex_unlock(&u->auth_mu);
    if (!ok)
        return ui_fail(q->conn, 403,
                       "this login link was used already, or is not batpak ui's: open the "
                       "newest one it printed");
    char cookie[160];
    snprintf(cookie, sizeof cookie, "batpak_ui=%s; HttpOnly; SameSite=Strict; Path=/", session);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    ui_headers(r);
    MHD_add_response_header(r, "Set-Cookie", cookie);
    MHD_add_response_header(r, "Location", "/");
    enum MHD_Result ret = MHD_queue_response(q->conn, 303, r);
    MHD_destroy_response(r);
    return ret;
}

static bool has_session(ui *u, struct MHD_Connection *conn) {
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "batpak_ui");
    bool ok = false;
    pthread_mutex_lock(&u->auth_mu);
    for (unsigned i = 0; i < u->nsessions && !ok; i++)
        ok = same_token(cookie, u->sessions[i]);
    pthread_mutex_unlock(&u->auth_mu);
    return ok;
}

/* ---------------------------------------------------------------- routing */

static const char ROUTES[] = "GET /, /api/store, /api/entities, /api/stream, /api/tail, "
                             "/api/checkpoints, /api/kinds, /api/verify; POST /api/verify, "
                             "/api/receipts";

/* Who may ask, decided from the headers alone (before any body is read): true with the refusal
 * queued in *ret. */
static bool refused(ui_req *q, const char *url, const char *method, enum MHD_Result *ret) {
    ui *u = q->u;
    struct MHD_Connection *c = q->conn;
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (u->remote && !strcmp(url, "/login") && !strcmp(method, "GET")) return false;
    if (!u->remote && !host_is_loopback(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
        *ret = ui_fail(c, 403, "this page answers requests to 127.0.0.1 or localhost only");
    else if (u->remote && !has_session(u, c))
        *ret =
            ui_fail(c, 401, "not logged in: open the login URL batpak ui printed at start (once)");
    else if (site && strcmp(site, "same-origin") && strcmp(site, "none") && strcmp(url, "/"))
        /* (a browser names where a request comes from: another site's page gets nothing but
         * the page itself, which a link there may open) */
        *ret = ui_fail(c, 403, "a request from another site's page (Sec-Fetch-Site: %.20s)", site);
    else if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST"))
        *ret = ui_fail(c, 405, "%.20s: the page is read-only (%s)", method, ROUTES);
    else if (!strcmp(method, "POST") &&
             !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Batpak"))
        /* (a page of another site cannot send this header without asking first) */
        *ret = ui_fail(c, 403, "POST needs the header X-Batpak: 1 (the page sends it)");
    else
        return false;
    return true;
}

static enum MHD_Result route(ui_req *q, const char *url, const char *method) {
    ui *u = q->u;
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (u->remote && !strcmp(url, "/login") && !strcmp(method, "GET")) return login(q);
    if (post) {
        if (q->too_big) return ui_fail(q->conn, 413, "the body is over %d bytes", UI_BODY_MAX);
        if (!strcmp(url, "/api/verify")) return ui_api_verify(q, true);
        if (strcmp(url, "/api/receipts"))
            return ui_fail(q->conn, 405, "POST %.200s: the page is read-only (%s)", url, ROUTES);
    }
    if (!strcmp(url, "/")) {
        char *page = strdup(ui_page_html);
        if (!page) cli_oom();
        return ui_reply(q->conn, 200, "text/html; charset=utf-8", page);
    }
    if (!strcmp(url, "/api/tail")) return ui_api_tail(q);
    if (!strcmp(url, "/api/verify")) return ui_api_verify(q, false);
    if (get && !strcmp(url, "/api/receipts"))
        return ui_fail(q->conn, 405, "GET /api/receipts: POST the receipts, one per line");
    static const struct {
        const char *url;
        enum MHD_Result (*fn)(ui_req *);
    } plain[] = {{"/api/store", ui_api_store},   {"/api/entities", ui_api_entities},
                 {"/api/stream", ui_api_stream}, {"/api/checkpoints", ui_api_checkpoints},
                 {"/api/kinds", ui_api_kinds},   {"/api/receipts", ui_api_receipts}};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        if (strcmp(url, plain[i].url)) continue;
        pthread_mutex_lock(&u->mu);
        uint64_t pub;
        if (bp_store_refresh(u->s, &pub) == BP_ECORRUPT) { /* the files changed: open again */
            bp_store *fresh;
            cli_ctx quiet = q->ctx; /* (a failed open keeps what it had; said in the reply) */
            if (cli_open_read(&quiet, &fresh) == CLI_OK) {
                cli_close(&quiet, u->s, CLI_OK);
                u->s = fresh;
            }
        }
        enum MHD_Result ret = plain[i].fn(q);
        pthread_mutex_unlock(&u->mu);
        return ret;
    }
    return ui_fail(q->conn, 404, "%.200s: no such page (%s)", url, ROUTES);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state) {
    (void)version;
    ui *u = cls;
    ui_req *q = *state;
    if (!q) { /* the first call of a request: its headers */
        if (!(q = calloc(1, sizeof *q))) return MHD_NO;
        q->conn = conn;
        q->u = u;
        q->ctx = *u->c;
        q->ctx.errbuf = q->err;
        q->ctx.errcap = sizeof q->err;
        *state = q;
        enum MHD_Result ret;
        return refused(q, url, method, &ret) ? ret : MHD_YES;
    }
    if (*size) { /* a piece of the body */
        if (!q->too_big && q->len + *size <= UI_BODY_MAX) {
            char *b = realloc(q->body, q->len + *size + 1);
            if (!b) cli_oom();
            memcpy(b + q->len, data, *size);
            q->body = b;
            q->len += *size;
            q->body[q->len] = 0;
        } else {
            q->too_big = true;
        }
        *size = 0;
        return MHD_YES;
    }
    return route(q, url, method);
}

static void completed(void *cls, struct MHD_Connection *conn, void **state,
                      enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)conn;
    (void)why;
    ui_req *q = *state;
    if (q) free(q->body);
    free(q);
    *state = NULL;
}

/* libmicrohttpd's own error lines, on stderr (no request's URL is ever printed). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* a browser that closed a live tail (a tab closed, a filter changed) is no error */
    if (strstr(msg, "no longer available for sending") || strstr(msg, "closed by remote peer") ||
        strstr(msg, "Connection reset"))
        return;
    fprintf(stderr, "batpak ui: http: %s%s", msg, strchr(msg, '\n') ? "" : "\n");
}

/* ---------------------------------------------------------------- command */

static int parse_listen(cli_ctx *c, const char *listen, bool remote, ui *u,
                        struct sockaddr_in *sin) {
    const char *colon = strrchr(listen, ':');
    uint64_t port = 0;
    if (!colon || (size_t)(colon - listen) >= sizeof u->host ||
        !cli_parse_u64(colon + 1, 65535, &port))
        return cli_fail(c, CLI_EUSAGE, "--listen '%s': expected HOST:PORT (127.0.0.1:8470)",
                        listen);
    memcpy(u->host, listen, (size_t)(colon - listen));
    u->host[colon - listen] = 0;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, u->host, &sin->sin_addr) != 1)
        return cli_fail(c, CLI_EUSAGE, "--listen '%s': '%s' is not an IPv4 address", listen,
                        u->host);
    bool loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    if (!loopback && !remote)
        return cli_fail(c, CLI_EUSAGE,
                        "--listen '%s': not a loopback address: add --allow-remote to serve "
                        "other machines (the page then needs the login URL printed at start)",
                        listen);
    u->remote = !loopback;
    return CLI_OK;
}

int cmd_ui(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"listen", true}, {"allow-remote", false}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    const char *listen = "127.0.0.1:8470";
    bool remote = false;
    int r, code;
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "listen"))
            listen = arg.value;
        else if (cli_arg_is(&arg, "allow-remote"))
            remote = true;
        else
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
    }
    if (r < 0) return CLI_EUSAGE;
    static ui u; /* (large: the sessions) */
    memset(&u, 0, sizeof u);
    struct sockaddr_in sin;
    if ((code = parse_listen(c, listen, remote, &u, &sin)) != CLI_OK) return code;
    if (u.remote && !random_hex(u.login))
        return cli_fail(c, CLI_EIO, "ui: no random bytes for the login token");
    if ((code = cli_open_read(c, &u.s)) != CLI_OK) return code;
    u.c = c;
    pthread_mutex_init(&u.mu, NULL);
    pthread_mutex_init(&u.auth_mu, NULL);
    ui_verify_init(&u.verify);
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGPIPE); /* (a browser gone mid-reply: the write fails, nothing more) */
    pthread_sigmask(SIG_BLOCK, &stop, &old); /* (the server's threads inherit it) */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)ntohs(sin.sin_port), NULL, NULL, handle, &u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED,
        completed, NULL, MHD_OPTION_END);
    if (d) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        pthread_mutex_lock(&u.auth_mu); /* (a login may come in at once: it prints too) */
        u.port = info ? info->port : ntohs(sin.sin_port);
        printf("{\"url\":\"http://%s:%u/\"}\n", u.host, u.port);
        if (u.remote) print_login(&u);
        fflush(stdout);
        pthread_mutex_unlock(&u.auth_mu);
        fprintf(stderr, "batpak ui: serving %s read-only at http://%s:%u/%s (Ctrl-C stops)\n",
                bp_store_dir(u.s), u.host, u.port,
                u.remote ? ", to other machines too: open the login URL it printed (once)" : "");
        int sig = 0;
        do
            sigwait(&stop, &sig);
        while (sig == SIGPIPE);
        atomic_store(&u.stopping, true);
        MHD_stop_daemon(d);
    } else {
        code = cli_fail(c, CLI_EIO, "ui: cannot listen on %s (in use, or not allowed)", listen);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ui_verify_finish(&u.verify);
    pthread_mutex_destroy(&u.auth_mu);
    pthread_mutex_destroy(&u.mu);
    return cli_close(c, u.s, code);
}
#endif
