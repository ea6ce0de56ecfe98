/* batpak as a backend of the shared peerbench harness (../shared/peerbench),
 * so the library runs the same W1-W3 workload as the raw file and the peers.
 * Mapping: one append() commit of 1 event = bp_append_ex (BP_DURABLE when the
 * mode syncs per commit, else BP_NO_SYNC); of n > 1 events = bp_append_batch
 * (a batch is always fdatasynced, so "bulk" mode syncs per commit here).
 * The store assigns its own event ids; a table maps the harness ids to them. */
#include "harness.h"

#include <batpak/batpak.h>
#include <stdio.h>
#include <stdlib.h>

struct store {
    bp_store *s;
    int sync_commit;
    /* harness id -> store id, open addressing */
    uint8_t (*keys)[16];
    bp_id *vals;
    size_t cap, n;
};

static const char *bp_backend_version(void) {
    return bp_version();
}

static void must(bp_status rc, const char *what) {
    if (rc != BP_OK) die("batpak %s: %s", what, bp_last_error());
}

static size_t slot_of(const uint8_t id[16], size_t cap) {
    uint64_t h = load_u64(id + 8) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static void map_put(store *st, const uint8_t id[16], const bp_id *v) {
    if ((st->n + 1) * 2 > st->cap) {
        size_t oc = st->cap, nc = oc ? oc * 2 : 1 << 16;
        uint8_t(*k)[16] = xcalloc(nc, 16);
        bp_id *vv = xcalloc(nc, sizeof *vv);
        for (size_t i = 0; i < oc; i++) {
            static const uint8_t zero[16];
            if (!memcmp(st->keys[i], zero, 16)) continue;
            size_t j = slot_of(st->keys[i], nc);
            while (memcmp(k[j], zero, 16))
                j = (j + 1) & (nc - 1);
            memcpy(k[j], st->keys[i], 16);
            vv[j] = st->vals[i];
        }
        free(st->keys);
        free(st->vals);
        st->keys = k;
        st->vals = vv;
        st->cap = nc;
    }
    static const uint8_t zero[16];
    size_t j = slot_of(id, st->cap);
    while (memcmp(st->keys[j], zero, 16))
        j = (j + 1) & (st->cap - 1);
    memcpy(st->keys[j], id, 16);
    st->vals[j] = *v;
    st->n++;
}

static const bp_id *map_get(const store *st, const uint8_t id[16]) {
    static const uint8_t zero[16];
    if (!st->cap) return NULL;
    for (size_t j = slot_of(id, st->cap);; j = (j + 1) & (st->cap - 1)) {
        if (!memcmp(st->keys[j], zero, 16)) return NULL;
        if (!memcmp(st->keys[j], id, 16)) return &st->vals[j];
    }
}

static store *bp_backend_open(const char *dir, const store_opts *o) {
    store *st = xcalloc(1, sizeof *st);
    bp_open_options opts = BP_OPEN_OPTIONS_INIT;
    opts.no_open_event = true; /* the harness expects exactly its own events */
    opts.durability = o->sync_commit ? BP_DURABLE : BP_NO_SYNC;
    st->sync_commit = o->sync_commit;
    must(bp_store_open(&st->s, dir, &opts), "open");
    return st;
}

static void cstr(char *out, const char *p, size_t n) {
    memcpy(out, p, n);
    out[n] = '\0';
}

static void bp_backend_append(store *st, const event *evs, size_t n) {
    char ent[256][256], sc[256][256];
    bp_receipt rc[256];
    if (n == 1) {
        cstr(ent[0], evs[0].entity, evs[0].entity_len);
        cstr(sc[0], evs[0].scope, evs[0].scope_len);
        must(bp_append(st->s, rc, ent[0], sc[0], (uint16_t)(0x1000 | (evs[0].kind & 0xFFF)),
                       evs[0].payload, evs[0].payload_len),
             "append");
        map_put(st, evs[0].id, &rc[0].event_id);
        return;
    }
    if (n > 256) die("batch larger than 256");
    bp_batch_item items[256];
    for (size_t i = 0; i < n; i++) {
        cstr(ent[i], evs[i].entity, evs[i].entity_len);
        cstr(sc[i], evs[i].scope, evs[i].scope_len);
        items[i] = (bp_batch_item){ent[i],
                                   sc[i],
                                   (uint16_t)(0x1000 | (evs[i].kind & 0xFFF)),
                                   evs[i].payload,
                                   evs[i].payload_len,
                                   NULL};
    }
    must(bp_append_batch(st->s, rc, items, n), "append_batch");
    for (size_t i = 0; i < n; i++)
        map_put(st, evs[i].id, &rc[i].event_id);
}

static void bp_backend_sync(store *st) {
    must(bp_store_sync(st->s), "sync");
}

static void to_event(const bp_event *e, event *out) {
    memset(out, 0, sizeof *out);
    out->seq = e->global_seq - 1;
    out->eseq = e->clock - 1;
    out->entity = e->entity;
    out->entity_len = (uint16_t)strlen(e->entity);
    out->scope = e->scope;
    out->scope_len = (uint16_t)strlen(e->scope);
    out->kind = e->kind;
    out->id = e->event_id.b;
    out->ts = BP_HLC_WALL_MS(e->hlc) * 1000;
    out->hash = e->event_hash.b;
    out->payload = e->payload;
    out->payload_len = (uint32_t)e->payload_len;
}

static size_t bp_backend_get(store *st, const uint8_t id[16], visit_fn fn, void *ctx) {
    const bp_id *bid = map_get(st, id);
    if (!bid) return 0;
    bp_event *e;
    if (bp_get(st->s, &e, bid) != BP_OK) return 0;
    event ev;
    to_event(e, &ev);
    fn(ctx, &ev);
    bp_event_free(e);
    return 1;
}

static size_t drain(bp_iter *it, visit_fn fn, void *ctx) {
    const bp_event *e;
    size_t n = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        event ev;
        to_event(e, &ev);
        fn(ctx, &ev);
        n++;
    }
    if (rc != BP_DONE) die("batpak iterate: %s", bp_last_error());
    bp_iter_free(it);
    return n;
}

static size_t bp_backend_read_entity(store *st, const char *entity, size_t len, visit_fn fn,
                                     void *ctx) {
    char e[256];
    cstr(e, entity, len);
    bp_iter *it;
    must(bp_stream(st->s, &it, e, BP_READ_FULL), "stream");
    return drain(it, fn, ctx);
}

static size_t bp_backend_scan(store *st, visit_fn fn, void *ctx) {
    bp_region r = BP_REGION_INIT;
    bp_iter *it;
    must(bp_query(st->s, &it, &r, BP_READ_FULL), "query");
    return drain(it, fn, ctx);
}

static size_t bp_backend_read_last(store *st, visit_fn fn, void *ctx) {
    bp_stats stats;
    must(bp_store_stats(st->s, &stats), "stats");
    if (!stats.events) return 0;
    bp_region r = BP_REGION_INIT;
    r.from_seq = stats.events;
    bp_iter *it;
    must(bp_query(st->s, &it, &r, BP_READ_FULL), "query");
    return drain(it, fn, ctx);
}

static void bp_backend_close(store *st) {
    must(bp_store_close(st->s), "close");
    free(st->keys);
    free(st->vals);
    free(st);
}

const backend BACKEND = {
    "batpak",       bp_backend_version,     bp_backend_open, bp_backend_append,    bp_backend_sync,
    bp_backend_get, bp_backend_read_entity, bp_backend_scan, bp_backend_read_last, bp_backend_close,
};
