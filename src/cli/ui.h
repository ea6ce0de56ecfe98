/*
 * ui.h — the pieces of `batpak ui` (cmd_ui.c: the server, its access rules and routing;
 * ui_api.c: the JSON endpoints; ui_live.c: the live tail and the verify job). Built only with
 * libmicrohttpd (BP_HAVE_UI). The endpoints are documented in doc/GUIDE.md ("Look at it in a
 * browser"). Nothing here writes to the store: every handle is opened read-only.
 */
#ifndef BATPAK_CLI_UI_H
#define BATPAK_CLI_UI_H
#ifdef BP_HAVE_UI

#include "cli/cli.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#define UI_LIMIT_MAX 1000  /* most entities or events one reply lists */
#define UI_BODY_MAX 65536  /* largest request body (a pasted receipt list) */
#define UI_TAILS_MAX 16    /* live tails at once: each holds a reader handle */
#define UI_SESSIONS_MAX 32 /* browsers logged in with the token (beyond loopback) */
#define UI_TOKEN_HEX 64    /* a token or session: 32 random bytes in hex */

/* The verify run from the page: at most one at a time, on its own thread and read-only
 * handle. Invariant: running implies started; result is NULL while running. Guarded by mu. */
typedef struct ui_verify {
    pthread_mutex_t mu;
    pthread_t thread;
    bool started; /* thread exists and is not yet joined */
    bool running;
    uint64_t done, total; /* bytes checked, of total (bp_verify_options.progress) */
    uint64_t started_us, finished_us;
    unsigned runs;  /* verifies started since the server started */
    json_t *result; /* the last run's report, or {"error"} */
} ui_verify;

/* The server's state, shared by every connection's thread. */
typedef struct ui {
    cli_ctx *c;
    bp_store *s;        /* the read-only handle the plain endpoints read; refreshed per request */
    pthread_mutex_t mu; /* guards s (one request at a time reads it) */
    atomic_bool stopping;
    atomic_uint tails; /* live tails open */
    ui_verify verify;
    /* access (beyond loopback): the one-time login token and the sessions it gave */
    bool remote;
    char host[64];
    pthread_mutex_t auth_mu; /* guards port (set once the server listens), login, sessions */
    unsigned port;
    char login[UI_TOKEN_HEX + 1];
    char sessions[UI_SESSIONS_MAX][UI_TOKEN_HEX + 1];
    unsigned nsessions; /* sessions[nsessions - 1] is the newest; the oldest goes first */
} ui;

/* One request: its body as it arrives, and a cli_ctx whose errors land in err. */
typedef struct ui_req {
    struct MHD_Connection *conn;
    ui *u;
    char *body;
    size_t len;
    bool too_big;
    cli_ctx ctx;
    char err[1024];
} ui_req;

/* Queue a reply (body is heap, freed here); the JSON ones decref v. */
enum MHD_Result ui_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                         char *body);
enum MHD_Result ui_reply_json(struct MHD_Connection *conn, unsigned status, json_t *v);
/* {"error": message} with status. */
enum MHD_Result ui_fail(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set the headers every reply carries (no caching, no sniffing, no referrer). */
void ui_headers(struct MHD_Response *r);

/* Query parameter name as a number in 0..max (absent: dflt); false with the reply queued. */
bool ui_param_u64(ui_req *q, const char *name, uint64_t max, uint64_t dflt, uint64_t *out,
                  enum MHD_Result *ret);

/* The plain endpoints (ui_api.c), called with u->mu held and the handle refreshed. */
enum MHD_Result ui_api_store(ui_req *q);
enum MHD_Result ui_api_entities(ui_req *q);
enum MHD_Result ui_api_stream(ui_req *q);
enum MHD_Result ui_api_checkpoints(ui_req *q);
enum MHD_Result ui_api_kinds(ui_req *q);
enum MHD_Result ui_api_receipts(ui_req *q);
/* Set o["kind_name"] when the store holds a schema of ev's kind (s: the handle ev is from). */
void ui_kind_name(bp_store *s, json_t *o, uint16_t kind);
/* An event as the page shows it: cli_event_json plus "time_ms" and "kind_name". */
json_t *ui_event_json(bp_store *s, const bp_event *ev);

/* The live tail, server-sent events (ui_live.c); takes no lock of u. */
enum MHD_Result ui_api_tail(ui_req *q);
/* GET /api/verify (state) and POST /api/verify (start one). */
enum MHD_Result ui_api_verify(ui_req *q, bool start);
void ui_verify_init(ui_verify *v);
/* Wait for a running verify to end (said on stderr), free the result. */
void ui_verify_finish(ui_verify *v);

#endif
#endif
