/* LMDB as a benchmark backend: one environment, five databases.
 *
 *   seq:   be64 seq -> the common record (bench.h)
 *   id:    id[16] -> be64 seq (MDB_NOOVERWRITE: ids are unique)
 *   ent:   entity | 0 | be64 eseq -> be64 seq
 *   scope: scope | 0 | be64 seq -> (empty)
 *   kind:  be16 kind | be64 seq -> (empty)
 *
 * One append = one write transaction. durable: default flags (LMDB syncs each commit);
 * otherwise MDB_NOSYNC. sync() = mdb_env_sync(env, 1). Reads use a read-only transaction
 * (MDB_NOTLS) per call. Library defaults otherwise; map size --map-mb (8 GiB). */
#include "bench.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

struct bench_store {
    MDB_env *env;
    MDB_dbi seq, id, ent, scope, kind;
    uint64_t next_seq; /* seqs >= this go in with MDB_APPEND (threads may append out of order);
                          starts after the last seq on disk */
};

static void check(int rc, const char *what) {
    if (rc) bench_die("lmdb %s: %s", what, mdb_strerror(rc));
}

static const char *lm_version(void) {
    return mdb_version(NULL, NULL, NULL);
}

static bench_store *lm_open(const char *dir, const bench_opts *o) {
    bench_store *s = bench_calloc(1, sizeof *s);
    check(mdb_env_create(&s->env), "env_create");
    check(mdb_env_set_maxdbs(s->env, 8), "set_maxdbs");
    check(mdb_env_set_mapsize(s->env, (size_t)(o->map_mb ? o->map_mb : 8192) << 20), "mapsize");
    check(mdb_env_open(s->env, dir, MDB_NOTLS | (o->durable ? 0 : MDB_NOSYNC), 0644), "env_open");
    MDB_txn *t;
    check(mdb_txn_begin(s->env, NULL, 0, &t), "txn_begin");
    check(mdb_dbi_open(t, "seq", MDB_CREATE, &s->seq), "dbi seq");
    check(mdb_dbi_open(t, "id", MDB_CREATE, &s->id), "dbi id");
    check(mdb_dbi_open(t, "ent", MDB_CREATE, &s->ent), "dbi ent");
    check(mdb_dbi_open(t, "scope", MDB_CREATE, &s->scope), "dbi scope");
    check(mdb_dbi_open(t, "kind", MDB_CREATE, &s->kind), "dbi kind");
    MDB_cursor *c;
    MDB_val k, v;
    check(mdb_cursor_open(t, s->seq, &c), "cursor_open");
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8)
        s->next_seq = bench_get_be64(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND)
        check(rc ? rc : MDB_CORRUPTED, "cursor_get last");
    mdb_cursor_close(c);
    check(mdb_txn_commit(t), "txn_commit");
    return s;
}

static void put(MDB_txn *t, MDB_dbi d, void *k, size_t kl, void *v, size_t vl, unsigned fl,
                const char *what) {
    MDB_val key = {kl, k}, val = {vl, v};
    check(mdb_put(t, d, &key, &val, fl), what);
}

static void lm_append(bench_store *s, const bench_event *evs, size_t n, bench_key *keys) {
    MDB_txn *t;
    check(mdb_txn_begin(s->env, NULL, 0, &t), "txn_begin");
    for (size_t i = 0; i < n; i++) {
        const bench_event *e = &evs[i];
        uint8_t seq[8], k[300], rec[BENCH_REC_HDR + 600];
        if (e->entity_len > 255 || e->scope_len > 255) bench_die("lmdb: entity or scope too long");
        size_t len = bench_rec_len(e);
        uint8_t *r = len <= sizeof rec ? rec : bench_malloc(len);
        bench_put_be64(seq, e->seq);
        bench_rec_encode(e, r);
        put(t, s->seq, seq, 8, r, len, e->seq >= s->next_seq ? MDB_APPEND : 0, "put seq");
        if (e->seq >= s->next_seq) s->next_seq = e->seq + 1;
        if (r != rec) free(r);
        put(t, s->id, (void *)e->id, 16, seq, 8, MDB_NOOVERWRITE, "put id");
        memcpy(k, e->entity, e->entity_len);
        k[e->entity_len] = 0;
        bench_put_be64(k + e->entity_len + 1, e->eseq);
        put(t, s->ent, k, e->entity_len + 9u, seq, 8, 0, "put ent");
        memcpy(k, e->scope, e->scope_len);
        k[e->scope_len] = 0;
        memcpy(k + e->scope_len + 1, seq, 8);
        put(t, s->scope, k, e->scope_len + 9u, "", 0, 0, "put scope");
        k[0] = (uint8_t)(e->kind >> 8);
        k[1] = (uint8_t)e->kind;
        memcpy(k + 2, seq, 8);
        put(t, s->kind, k, 10, "", 0, 0, "put kind");
        memcpy(keys[i].b, e->id, 16);
    }
    check(mdb_txn_commit(t), "commit");
}

static void lm_sync(bench_store *s) {
    check(mdb_env_sync(s->env, 1), "env_sync");
}

/* Visit the record of seq (big-endian bytes). */
static void visit_seq(bench_store *s, MDB_txn *t, const void *seq, unsigned flags,
                      bench_visit_fn fn, void *ctx) {
    MDB_val k = {8, (void *)seq}, v;
    check(mdb_get(t, s->seq, &k, &v), "get seq");
    bench_event e;
    if (bench_rec_decode(v.mv_data, v.mv_size, &e, flags)) bench_die("lmdb: bad record");
    fn(ctx, &e);
}

static size_t lm_get(bench_store *s, const bench_key *key, bench_visit_fn fn, void *ctx) {
    MDB_txn *t;
    check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t), "txn_begin");
    MDB_val k = {16, (void *)key->b}, v;
    int rc = mdb_get(t, s->id, &k, &v);
    size_t n = 0;
    if (rc == 0) {
        visit_seq(s, t, v.mv_data, BENCH_PAYLOAD, fn, ctx);
        n = 1;
    } else if (rc != MDB_NOTFOUND) {
        check(rc, "get id");
    }
    mdb_txn_abort(t);
    return n;
}

/* Every key of d that starts with prefix[0..plen): seq from the key's last 8 bytes (keyseq)
 * or from the value. */
static size_t prefix_scan(bench_store *s, MDB_dbi d, const uint8_t *prefix, size_t plen, int keyseq,
                          unsigned flags, bench_visit_fn fn, void *ctx) {
    MDB_txn *t;
    MDB_cursor *c;
    check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t), "txn_begin");
    check(mdb_cursor_open(t, d, &c), "cursor_open");
    MDB_val k = {plen, (void *)prefix}, v;
    size_t n = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= plen && !memcmp(k.mv_data, prefix, plen)) {
        const uint8_t *seq = keyseq ? (const uint8_t *)k.mv_data + k.mv_size - 8 : v.mv_data;
        visit_seq(s, t, seq, flags, fn, ctx);
        n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) check(rc, "cursor_get");
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return n;
}

static size_t lm_entity(bench_store *s, const char *entity, unsigned flags, bench_visit_fn fn,
                        void *ctx) {
    size_t l = strlen(entity);
    return prefix_scan(s, s->ent, (const uint8_t *)entity, l + 1, 0, flags, fn, ctx);
}

static size_t lm_scope(bench_store *s, const char *scope, bench_visit_fn fn, void *ctx) {
    size_t l = strlen(scope);
    return prefix_scan(s, s->scope, (const uint8_t *)scope, l + 1, 1, BENCH_PAYLOAD, fn, ctx);
}

static size_t lm_kind(bench_store *s, uint16_t kind, bench_visit_fn fn, void *ctx) {
    uint8_t p[2] = {(uint8_t)(kind >> 8), (uint8_t)kind};
    return prefix_scan(s, s->kind, p, 2, 1, BENCH_PAYLOAD, fn, ctx);
}

static size_t lm_last(bench_store *s, bench_visit_fn fn, void *ctx) {
    MDB_txn *t;
    MDB_cursor *c;
    check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t), "txn_begin");
    check(mdb_cursor_open(t, s->seq, &c), "cursor_open");
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    size_t n = 0;
    if (rc == 0) {
        bench_event e;
        if (bench_rec_decode(v.mv_data, v.mv_size, &e, BENCH_PAYLOAD))
            bench_die("lmdb: bad record");
        fn(ctx, &e);
        n = 1;
    } else if (rc != MDB_NOTFOUND) {
        check(rc, "cursor_get last");
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return n;
}

static void lm_close(bench_store *s) {
    mdb_env_close(s->env);
    free(s);
}

const bench_backend BE_LMDB = {
    .name = "lmdb",
    .version = lm_version,
    .thread_safe = 0,
    .open = lm_open,
    .append = lm_append,
    .sync = lm_sync,
    .get = lm_get,
    .entity = lm_entity,
    .scope = lm_scope,
    .kind = lm_kind,
    .last = lm_last,
    .close = lm_close,
};
