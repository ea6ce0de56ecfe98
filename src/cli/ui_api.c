/* batpak ui: the JSON endpoints read from the server's shared read-only handle (doc/GUIDE.md
 * "Look at it in a browser"). Each runs with u->mu held, after the handle was refreshed. */
#include "cli/ui.h"

#ifdef BP_HAVE_UI
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- kind names */

/* kind (decimal text) -> type name, from the stored schemas; rebuilt when their JSON text
 * changes, looked at no more than every 200 ms. Guarded by kinds_mu (tails call from their
 * own threads with their own handles). */
static pthread_mutex_t kinds_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *kinds_names;
static char *kinds_text;
static uint64_t kinds_checked_us;

static void kinds_refresh(bp_store *s) {
    uint64_t now = cli_now_us();
    if (kinds_names && now - kinds_checked_us < 200000) return;
    kinds_checked_us = now;
    char *text = NULL;
    if (bp_schema_json(s, &text)) return; /* (names are a nicety: the kind number stays) */
    if (kinds_text && !strcmp(kinds_text, text)) {
        bp_free(text);
        return;
    }
    json_t *all = json_loads(text, 0, NULL), *names = json_object(), *t;
    size_t i;
    if (!names) cli_oom();
    json_array_foreach(all, i, t) {
        json_t *kind = json_object_get(t, "kind"), *name = json_object_get(t, "name");
        char key[16];
        if (!json_is_integer(kind) || !json_is_string(name)) continue;
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(kind));
        json_object_set(names, key, name);
    }
    json_decref(all);
    json_decref(kinds_names);
    kinds_names = names;
    free(kinds_text);
    kinds_text = strdup(text);
    bp_free(text);
}

void ui_kind_name(bp_store *s, json_t *o, uint16_t kind) {
    char key[16];
    snprintf(key, sizeof key, "%u", (unsigned)kind);
    pthread_mutex_lock(&kinds_mu);
    kinds_refresh(s);
    json_t *name = kinds_names ? json_object_get(kinds_names, key) : NULL;
    if (name) cli_json_set(o, "kind_name", json_incref(name));
    pthread_mutex_unlock(&kinds_mu);
}

json_t *ui_event_json(bp_store *s, const bp_event *ev) {
    json_t *o = cli_event_json(s, ev);
    cli_json_set(o, "time_ms", cli_json_u64(BP_HLC_WALL_MS(ev->hlc)));
    ui_kind_name(s, o, ev->kind);
    return o;
}

/* GET /api/kinds: the stored schemas, as `batpak schema` lists them. */
enum MHD_Result ui_api_kinds(ui_req *q) {
    char *text = NULL;
    bp_status rc = bp_schema_json(q->u->s, &text);
    if (rc) return ui_fail(q->conn, 500, "%s", bp_last_error());
    json_t *all = json_loads(text, 0, NULL);
    bp_free(text);
    if (!all) cli_oom();
    return ui_reply_json(q->conn, 200, json_pack("{s:o}", "kinds", all));
}

/* ------------------------------------------------------------------ store */

/* GET /api/store: figures, the writer and readers, what the open found, the fail state. */
enum MHD_Result ui_api_store(ui_req *q) {
    bp_store *s = q->u->s;
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_store_diagnostics dg = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_stats_get(s, &st) || bp_store_diagnostics_get(s, &dg))
        return ui_fail(q->conn, 500, "%s", bp_last_error());
    bp_store_open_report op = BP_STORE_OPEN_REPORT_INIT; /* the writer's open when one holds it */
    bool writer_open = st.writer_pid && bp_store_writer_report(s, &op) == BP_OK;
    if (!writer_open) bp_store_open_report_get(s, &op);
    bp_id uuid;
    bp_store_uuid(s, uuid.b);
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "dir", cli_json_text(bp_store_dir(s), strlen(bp_store_dir(s))));
    cli_json_set(o, "store_uuid", cli_json_id(&uuid));
    cli_json_set(o, "events", cli_json_u64(st.events));
    cli_json_set(o, "entities", cli_json_u64(st.entities));
    cli_json_set(o, "scopes", cli_json_u64(st.scopes));
    cli_json_set(o, "segments", json_integer(dg.segments));
    cli_json_set(o, "bytes", cli_json_u64(st.bytes_on_disk));
    cli_json_set(o, "published_seq", cli_json_u64(dg.published_seq));
    cli_json_set(o, "writer_pid", json_integer(st.writer_pid));
    cli_json_set(o, "readers", json_integer(st.readers));
    cli_json_set(o, "appends", cli_json_u64(st.appends));
    cli_json_set(o, "write_p99_us", cli_json_u64(st.write_p99_us));
    cli_json_set(o, "failed", json_boolean(dg.failed));
    cli_json_set(o, "failed_msg", cli_json_text(dg.failed_msg, strlen(dg.failed_msg)));
    cli_json_set(o, "open_of", json_string(writer_open ? "writer" : "this reader"));
    cli_json_set(o, "open", cli_open_report_json(&op));
    return ui_reply_json(q->conn, 200, o);
}

/* --------------------------------------------------------------- entities */

/* The HLC time of name's last event, from the index (no event read): 0 when it has none. The
 * last events of the store first, then windows four times as long back (an index-only query reads
 * only the segments of its range: an entity busy lately costs one window, however long its
 * stream). pub: the last published global_seq. */
static uint64_t entity_last_ms(bp_store *s, const char *name, uint64_t pub) {
    bp_region r = BP_REGION_INIT;
    r.entity = name;
    uint64_t last = 0, window = 4096;
    for (;;) {
        r.from_seq = pub > window ? pub - window + 1 : 0;
        bp_iter *it;
        const bp_event *ev;
        if (bp_query(s, &it, &r, BP_READ_INDEX_ONLY)) return 0;
        while (bp_iter_next(it, &ev) == BP_OK)
            last = BP_HLC_WALL_MS(ev->hlc);
        bp_iter_free(it);
        if (last || r.from_seq == 0) return last;
        r.to_seq = r.from_seq - 1; /* (the window before, next) */
        window *= 4;
    }
}

/* GET /api/entities?prefix&after&limit: names in bytewise order with their counts, head clock
 * and last activity; "next" is the after= of the next page (null at the end). */
enum MHD_Result ui_api_entities(ui_req *q) {
    enum MHD_Result ret = MHD_NO;
    uint64_t limit;
    if (!ui_param_u64(q, "limit", UI_LIMIT_MAX, 100, &limit, &ret)) return ret;
    if (limit == 0) return ui_fail(q->conn, 400, "limit: 0 lists nothing (1..%d)", UI_LIMIT_MAX);
    const char *prefix = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "prefix");
    const char *after = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "after");
    bp_entity_info *page = calloc(limit + 1, sizeof *page);
    if (!page) cli_oom();
    page[0] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    size_t n = 0; /* one more than asked: whether there is a next page */
    bp_status rc = bp_entities_list(q->u->s, prefix && *prefix ? prefix : NULL,
                                    after && *after ? after : NULL, page, limit + 1, &n);
    if (rc) {
        free(page);
        return ui_fail(q->conn, rc == BP_EINVAL ? 400 : 500, "%s", bp_last_error());
    }
    bp_store_diagnostics dg = BP_STORE_DIAGNOSTICS_INIT;
    uint64_t pub = bp_store_diagnostics_get(q->u->s, &dg) ? 0 : dg.published_seq;
    json_t *a = json_array();
    if (!a) cli_oom();
    for (size_t i = 0; i < n && i < limit; i++) {
        json_t *e = json_object();
        if (!e) cli_oom();
        cli_json_set(e, "entity", cli_json_text(page[i].name, strlen(page[i].name)));
        cli_json_set(e, "events", cli_json_u64(page[i].events));
        cli_json_set(e, "clock", cli_json_u64(page[i].clock));
        cli_json_set(e, "last_ms", cli_json_u64(entity_last_ms(q->u->s, page[i].name, pub)));
        if (json_array_append_new(a, e)) cli_oom();
    }
    json_t *next =
        n > limit ? cli_json_text(page[limit - 1].name, strlen(page[limit - 1].name)) : json_null();
    free(page);
    return ui_reply_json(q->conn, 200, json_pack("{s:o, s:o}", "entities", a, "next", next));
}

/* ----------------------------------------------------------------- stream */

/* The global_seq of entity's first event with a clock >= clock (0: none), from the index. */
static uint64_t seq_from_clock(bp_store *s, const char *entity, uint64_t clock) {
    bp_iter *it;
    const bp_event *ev;
    uint64_t seq = 0;
    if (bp_stream(s, &it, entity, BP_READ_INDEX_ONLY)) return 0;
    while (!seq && bp_iter_next(it, &ev) == BP_OK)
        if (ev->clock >= clock) seq = ev->global_seq;
    bp_iter_free(it);
    return seq;
}

/* GET /api/stream?entity&after&limit: the entity's events from clock after + 1, each with
 * its chain mark: "ok" when its prev_hash is the event_hash of the entity's event before it,
 * "broken" when not, "start" for the entity's first event (prev_hash zeros, else "broken"),
 * "unchecked" when the event before it is gone (compacted away). "next" is the after= of the next
 * page (null at the head). */
enum MHD_Result ui_api_stream(ui_req *q) {
    enum MHD_Result ret = MHD_NO;
    bp_store *s = q->u->s;
    uint64_t limit, after;
    const char *entity = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "entity");
    if (!entity || !*entity) return ui_fail(q->conn, 400, "entity: missing");
    if (!ui_param_u64(q, "limit", UI_LIMIT_MAX, 100, &limit, &ret) ||
        !ui_param_u64(q, "after", UINT64_MAX, 0, &after, &ret))
        return ret;
    uint64_t head = 0;
    bp_hash h;
    bp_status rc = bp_entity_head(s, &head, &h, entity);
    if (rc == BP_EINVAL) return ui_fail(q->conn, 400, "%s", bp_last_error());
    if (rc == BP_ENOTFOUND || (!rc && head == 0))
        return ui_fail(q->conn, 404, "entity '%s': no events", entity);
    if (rc) return ui_fail(q->conn, 500, "%s", bp_last_error());
    json_t *a = json_array();
    if (!a) cli_oom();
    if (after >= head) /* (nothing past the head: no read) */
        return ui_reply_json(q->conn, 200,
                             json_pack("{s:o, s:o, s:o, s:n}", "entity",
                                       cli_json_text(entity, strlen(entity)), "head_clock",
                                       cli_json_u64(head), "events", a, "next"));
    /* from the event at clock `after` (for its hash: the first mark is checked too), or the
     * first after it when that one was compacted away */
    bp_region r = BP_REGION_INIT;
    r.entity = entity;
    r.from_seq = after ? seq_from_clock(s, entity, after) : 0;
    bp_iter *it;
    if ((rc = bp_query(s, &it, &r, BP_READ_FULL))) {
        json_decref(a);
        return ui_fail(q->conn, rc == BP_EINVAL ? 400 : 500, "%s", bp_last_error());
    }
    const bp_event *ev;
    bp_hash prev;
    uint64_t prev_clock = 0, last = after;
    while (json_array_size(a) < limit && (rc = bp_iter_next(it, &ev)) == BP_OK) {
        if (ev->clock > after) {
            json_t *o = ui_event_json(s, ev);
            static const uint8_t zero[32];
            const char *mark = ev->clock == 1
                                   ? (memcmp(zero, ev->prev_hash.b, 32) ? "broken" : "start")
                               : prev_clock != ev->clock - 1              ? "unchecked"
                               : memcmp(prev.b, ev->prev_hash.b, 32) == 0 ? "ok"
                                                                          : "broken";
            cli_json_set(o, "chain", json_string(mark));
            if (json_array_append_new(a, o)) cli_oom();
            last = ev->clock;
        }
        prev = ev->event_hash;
        prev_clock = ev->clock;
    }
    bp_iter_free(it);
    if (rc != BP_OK && rc != BP_DONE) {
        json_decref(a);
        return ui_fail(q->conn, 500, "%s", bp_last_error());
    }
    return ui_reply_json(q->conn, 200,
                         json_pack("{s:o, s:o, s:o, s:o}", "entity",
                                   cli_json_text(entity, strlen(entity)), "head_clock",
                                   cli_json_u64(head), "events", a, "next",
                                   last < head ? cli_json_u64(last) : json_null()));
}

/* ------------------------------------------------------------ checkpoints */

/* GET /api/checkpoints: every durable position (workers, reactors, relays: DIR/cursors/) with
 * its lag, and the live writer's delivery figures (subscriptions, running workers). */
enum MHD_Result ui_api_checkpoints(ui_req *q) {
    bp_store *s = q->u->s;
    size_t n = 0;
    bp_checkpoint_info *ck = NULL;
    bp_status rc = cli_checkpoints_list(s, &ck, &n);
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT;
    if (!rc) rc = bp_delivery_stats_get(s, &ds);
    if (rc) {
        free(ck);
        return ui_fail(q->conn, 500, "%s", bp_last_error());
    }
    json_t *a = json_array();
    if (!a) cli_oom();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (!o) cli_oom();
        cli_json_set(o, "id", cli_json_text(ck[i].id, strlen(ck[i].id)));
        cli_json_set(o, "kind", json_string(strncmp(ck[i].id, "relay.", 6) ? "worker" : "relay"));
        cli_json_set(o, "position", cli_json_u64(ck[i].position));
        cli_json_set(o, "lag_events", cli_json_u64(ck[i].lag_events));
        cli_json_set(o, "valid", json_boolean(ck[i].valid));
        if (json_array_append_new(a, o)) cli_oom();
    }
    free(ck);
    json_t *d =
        json_pack("{s:i, s:I, s:I, s:i, s:I, s:I}", "subscriptions", (int)ds.subscriptions,
                  "queued", (json_int_t)ds.queued, "dropped", (json_int_t)ds.dropped, "workers",
                  (int)ds.workers, "lag_events_max", (json_int_t)ds.lag_events_max,
                  "poison_skipped", (json_int_t)ds.poison_skipped);
    return ui_reply_json(q->conn, 200, json_pack("{s:o, s:o}", "checkpoints", a, "delivery", d));
}

/* --------------------------------------------------------------- receipts */

/* One receipt line checked against the store's key registry (DIR/keys/). */
static json_t *receipt_result(bp_store *s, size_t line, const char *text, size_t len) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "line", json_integer((json_int_t)line));
    bp_status rc;
    if (!cli_receipt_check(o, text, len, s, NULL, &rc)) cli_json_set(o, "valid", json_false());
    if (rc) cli_json_set(o, "error", cli_json_text(bp_last_error(), strlen(bp_last_error())));
    return o;
}

/* POST /api/receipts, body: receipts as append prints them, one JSON object per line. Each
 * gets {"line","valid","type","key_id","event_id","entity","global_seq"} (and "error"). */
enum MHD_Result ui_api_receipts(ui_req *q) {
    json_t *a = json_array();
    if (!a) cli_oom();
    size_t line = 0;
    for (char *p = q->body; p && p < q->body + q->len;) {
        char *nl = memchr(p, '\n', (size_t)(q->body + q->len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(q->body + q->len - p);
        line++;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank && json_array_append_new(a, receipt_result(q->u->s, line, p, n))) cli_oom();
        p = nl ? nl + 1 : NULL;
    }
    if (!json_array_size(a)) {
        json_decref(a);
        return ui_fail(q->conn, 400, "no receipt: paste what append printed (one per line)");
    }
    return ui_reply_json(q->conn, 200, json_pack("{s:o}", "receipts", a));
}
#else
typedef int ui_api_not_built; /* (ISO C: no empty translation unit) */
#endif
