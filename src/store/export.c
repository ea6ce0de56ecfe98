/* Export as NDJSON (doc/FORMAT.md "Export"): every field of every event, the payload in
 * base64, so that export -> import -> export is byte-identical and an import (import.c) can
 * check every hash and chain before it writes. */
#include "store/store_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, NUL-terminated; malloc'd (NULL when out of memory). */
static char *b64_encode(const uint8_t *p, size_t n) {
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = B64[v >> 18 & 63];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? B64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------------ export */

static json_t *id_json(const bp_id *id) {
    char t[37];
    bp_id_format(id, t);
    return json_string(t);
}

static json_t *hash_json(const bp_hash *h) {
    char t[65];
    bp_hash_format(h, t);
    return json_string(t);
}

static json_t *u64_json(uint64_t v) {
    return json_integer((json_int_t)v); /* values stay below 2^63 (seqs, clocks, HLC) */
}

/* One export line (without its newline), malloc'd; NULL when out of memory. */
static char *event_line(const bp_event *ev, size_t *len) {
    json_t *o = json_object();
    char *payload = b64_encode(ev->payload ? ev->payload : (const uint8_t *)"", ev->payload_len);
    bool ok = o && payload;
    ok = ok && !json_object_set_new(o, "global_seq", u64_json(ev->global_seq));
    ok = ok && !json_object_set_new(o, "event_id", id_json(&ev->event_id));
    ok = ok && !json_object_set_new(o, "entity", json_string(ev->entity));
    ok = ok && !json_object_set_new(o, "scope", json_string(ev->scope));
    ok = ok && !json_object_set_new(o, "kind", json_integer(ev->kind));
    ok = ok && !json_object_set_new(o, "clock", u64_json(ev->clock));
    ok = ok && !json_object_set_new(o, "hlc", u64_json(ev->hlc));
    ok = ok && !json_object_set_new(o, "flags", json_integer(ev->flags));
    ok = ok && !json_object_set_new(o, "correlation_id", id_json(&ev->correlation_id));
    ok = ok && !json_object_set_new(o, "causation_id",
                                    ev->has_causation ? id_json(&ev->causation_id) : json_null());
    ok = ok &&
         !json_object_set_new(o, "idempotency_key",
                              ev->idempotency_key ? json_string(ev->idempotency_key) : json_null());
    json_t *batch = json_null();
    if (ev->batch_count)
        batch = json_pack("{s:I,s:i,s:i}", "id", (json_int_t)ev->batch_id, "index",
                          (int)ev->batch_index, "count", (int)ev->batch_count);
    ok = ok && !json_object_set_new(o, "batch", batch);
    ok = ok && !json_object_set_new(o, "prev_hash", hash_json(&ev->prev_hash));
    ok = ok && !json_object_set_new(o, "event_hash", hash_json(&ev->event_hash));
    ok = ok && !json_object_set_new(o, "payload", json_string(payload));
    char *line = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    free(payload);
    if (line) *len = strlen(line);
    return line;
}

static int cmp_anchor(const void *x, const void *y) {
    const bp_anchor *a = x, *b = y;
    int c = memcmp(a->entity, b->entity, a->len < b->len ? a->len : b->len);
    return c ? c : (int)a->len - (int)b->len;
}

bp_status bp_anchors_record(bp_store *s, bp_buf *out, uint64_t *upto) {
    pthread_rwlock_rdlock(&s->ilock); /* a compaction replaces s->anchors under it */
    uint32_t n = s->anchors.n;
    *upto = s->anchors.upto;
    json_t *o = n ? json_object() : NULL, *list = n ? json_array() : NULL;
    bp_anchor *v = n ? malloc(n * sizeof *v) : NULL;
    bool ok = o && list && v;
    if (ok) memcpy(v, s->anchors.v, n * sizeof *v);
    if (ok) qsort(v, n, sizeof *v, cmp_anchor); /* one order: the same anchors, the same bytes */
    for (uint32_t i = 0; ok && i < n; i++) {
        json_t *a = json_object();
        ok = a && !json_array_append_new(list, a);
        ok = ok && !json_object_set_new(a, "entity", json_stringn(v[i].entity, v[i].len));
        ok = ok && !json_object_set_new(a, "clock", u64_json(v[i].clock));
        ok = ok && !json_object_set_new(a, "hash", hash_json(&v[i].hash));
    }
    pthread_rwlock_unlock(&s->ilock);
    free(v);
    if (!n) return BP_DONE;
    ok = ok && !json_object_set_new(o, "format", json_string(BP_EXPORT_ANCHORS_FORMAT));
    ok = ok && !json_object_set_new(o, "upto", u64_json(*upto));
    ok = ok && !json_object_set(o, "anchors", list);
    json_decref(list);
    char *line = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (line && bp_buf_append(out, line, strlen(line))) ok = false;
    free(line);
    return line && ok ? BP_OK : bp_err(BP_ENOMEM, "export: out of memory writing the anchors");
}

bp_status bp_export(bp_store *s, bp_write_fn out, void *ctx, const bp_export_options *opts) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_export: NULL argument");
    static const bp_export_options all = BP_EXPORT_OPTIONS_INIT;
    if (!opts) opts = &all;
    BP_SIZE_CHECK("bp_export", opts, bp_export_options, BP_EXPORT_OPTIONS_INIT);
    uint64_t after_seq = opts->after_seq;
    bp_progress_fn progress = opts->progress;
    void *progress_ctx = opts->progress_ctx;
    /* a compacted store's export starts with its anchors: what a restore continues from */
    bp_buf head = {0};
    uint64_t upto = 0;
    bp_status hrc = bp_anchors_record(s, &head, &upto);
    if (!hrc && after_seq < upto && !bp_buf_append(&head, "\n", 1))
        hrc = out(ctx, head.data, head.len);
    else if (!hrc && after_seq < upto)
        hrc = bp_err(BP_ENOMEM, "export: out of memory");
    bp_buf_free(&head);
    if (hrc && hrc != BP_DONE) return hrc;
    bp_region r = BP_REGION_INIT;
    r.from_seq = after_seq + 1;
    bp_iter *it;
    bp_status rc = bp_query(s, &it, &r, BP_READ_SEALED); /* payloads as stored: hashes hold */
    if (rc) return rc;
    uint64_t total = __atomic_load_n(&s->published, __ATOMIC_ACQUIRE), done = 0;
    total = total > after_seq ? total - after_seq : 0;
    if (progress) progress(progress_ctx, 0, total);
    const bp_event *ev;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
        size_t len;
        char *line = event_line(ev, &len);
        if (!line) {
            rc = bp_err(BP_ENOMEM,
                        "export: cannot write event %llu as JSON (out of memory, or a string "
                        "that is not UTF-8)",
                        (unsigned long long)ev->global_seq);
            break;
        }
        line[len] = '\n'; /* json_dumps left room for its NUL: the newline takes it */
        rc = out(ctx, line, len + 1);
        free(line);
        if (rc) break;
        if (progress && ++done % 1024 == 0) progress(progress_ctx, done, total);
    }
    bp_iter_free(it);
    if (rc == BP_DONE) {
        rc = BP_OK;
        if (progress) progress(progress_ctx, total, total);
    }
    return rc;
}
