/* RocksDB as a benchmark backend, through its C API. One key space with one-byte prefixes:
 *
 *   's' be64 seq -> the common record (bench.h)
 *   'i' id[16] -> be64 seq
 *   'e' entity 0 be64 eseq -> be64 seq
 *   'c' scope 0 be64 seq -> (empty)
 *   'k' be16 kind be64 seq -> (empty)
 *
 * One append = one WriteBatch; WriteOptions.sync = durable (RocksDB group-commits concurrent
 * synced writes, so append is called from several threads at once). sync() =
 * rocksdb_flush_wal(db, 1). Defaults otherwise, plus create_if_missing. */
#include "bench.h"

#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef BENCH_ROCKSDB_VERSION
#define BENCH_ROCKSDB_VERSION "unknown"
#endif

struct bench_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
};

static void check(char *err, const char *what) {
    if (err) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err);
        rocksdb_free(err);
        bench_die("rocksdb %s: %s", what, msg);
    }
}

static const char *rk_version(void) {
    return BENCH_ROCKSDB_VERSION; /* from pkg-config: the C API has no version call */
}

static bench_store *rk_open(const char *dir, const bench_opts *o) {
    bench_store *s = bench_calloc(1, sizeof *s);
    char *err = NULL;
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    s->db = rocksdb_open(s->opts, dir, &err);
    check(err, "open");
    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo, o->durable ? 1 : 0);
    s->ro = rocksdb_readoptions_create();
    return s;
}

/* The key prefix tag | name | 0 of the entity ('e') and scope ('c') indexes, in k (room for
 * 300 bytes); returns its length. */
static size_t name_prefix(uint8_t *k, char tag, const char *name, size_t len) {
    if (len > 255) bench_die("rocksdb: entity or scope longer than 255 bytes");
    k[0] = (uint8_t)tag;
    memcpy(k + 1, name, len);
    k[1 + len] = 0;
    return len + 2;
}

static void rk_append(bench_store *s, const bench_event *evs, size_t n, bench_key *keys) {
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        const bench_event *e = &evs[i];
        uint8_t k[300], seq[8], rec[BENCH_REC_HDR + 600];
        size_t len = bench_rec_len(e);
        uint8_t *r = len <= sizeof rec ? rec : bench_malloc(len);
        bench_put_be64(seq, e->seq);
        bench_rec_encode(e, r);
        k[0] = 's';
        memcpy(k + 1, seq, 8);
        rocksdb_writebatch_put(b, (const char *)k, 9, (const char *)r, len);
        if (r != rec) free(r);
        k[0] = 'i';
        memcpy(k + 1, e->id, 16);
        rocksdb_writebatch_put(b, (const char *)k, 17, (const char *)seq, 8);
        size_t pl = name_prefix(k, 'e', e->entity, e->entity_len);
        bench_put_be64(k + pl, e->eseq);
        rocksdb_writebatch_put(b, (const char *)k, pl + 8, (const char *)seq, 8);
        pl = name_prefix(k, 'c', e->scope, e->scope_len);
        memcpy(k + pl, seq, 8);
        rocksdb_writebatch_put(b, (const char *)k, pl + 8, "", 0);
        k[0] = 'k';
        k[1] = (uint8_t)(e->kind >> 8);
        k[2] = (uint8_t)e->kind;
        memcpy(k + 3, seq, 8);
        rocksdb_writebatch_put(b, (const char *)k, 11, "", 0);
        memcpy(keys[i].b, e->id, 16);
    }
    char *err = NULL;
    rocksdb_write(s->db, s->wo, b, &err);
    rocksdb_writebatch_destroy(b);
    check(err, "write");
}

static void rk_sync(bench_store *s) {
    char *err = NULL;
    rocksdb_flush_wal(s->db, 1, &err);
    check(err, "flush_wal");
}

static void visit_seq(bench_store *s, const uint8_t seq[8], unsigned flags, bench_visit_fn fn,
                      void *ctx) {
    uint8_t k[9] = {'s'};
    memcpy(k + 1, seq, 8);
    char *err = NULL;
    size_t vl;
    char *v = rocksdb_get(s->db, s->ro, (const char *)k, 9, &vl, &err);
    check(err, "get seq");
    if (!v) bench_die("rocksdb: record of an indexed seq is missing");
    bench_event e;
    if (bench_rec_decode((const uint8_t *)v, vl, &e, flags)) bench_die("rocksdb: bad record");
    fn(ctx, &e);
    rocksdb_free(v);
}

static size_t rk_get(bench_store *s, const bench_key *key, bench_visit_fn fn, void *ctx) {
    uint8_t k[17] = {'i'};
    memcpy(k + 1, key->b, 16);
    char *err = NULL;
    size_t vl;
    char *v = rocksdb_get(s->db, s->ro, (const char *)k, 17, &vl, &err);
    check(err, "get id");
    if (!v) return 0;
    if (vl != 8) bench_die("rocksdb: bad id entry");
    visit_seq(s, (const uint8_t *)v, BENCH_PAYLOAD, fn, ctx);
    rocksdb_free(v);
    return 1;
}

/* Every key starting with prefix: the seq is the value (keyseq 0) or the key's last 8 bytes. */
static size_t prefix_scan(bench_store *s, const uint8_t *prefix, size_t plen, int keyseq,
                          unsigned flags, bench_visit_fn fn, void *ctx) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ro);
    size_t n = 0;
    for (rocksdb_iter_seek(it, (const char *)prefix, plen); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen)) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        visit_seq(s, keyseq ? k + kl - 8 : v, flags, fn, ctx);
        n++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    check(err, "iterate");
    return n;
}

static size_t rk_entity(bench_store *s, const char *entity, unsigned flags, bench_visit_fn fn,
                        void *ctx) {
    uint8_t p[300];
    return prefix_scan(s, p, name_prefix(p, 'e', entity, strlen(entity)), 0, flags, fn, ctx);
}

static size_t rk_scope(bench_store *s, const char *scope, bench_visit_fn fn, void *ctx) {
    uint8_t p[300];
    return prefix_scan(s, p, name_prefix(p, 'c', scope, strlen(scope)), 1, BENCH_PAYLOAD, fn, ctx);
}

static size_t rk_kind(bench_store *s, uint16_t kind, bench_visit_fn fn, void *ctx) {
    uint8_t p[3] = {'k', (uint8_t)(kind >> 8), (uint8_t)kind};
    return prefix_scan(s, p, 3, 1, BENCH_PAYLOAD, fn, ctx);
}

static size_t rk_last(bench_store *s, bench_visit_fn fn, void *ctx) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ro);
    rocksdb_iter_seek_for_prev(it, "t", 1); /* the last key of the 's' range */
    size_t n = 0;
    if (rocksdb_iter_valid(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl == 9 && k[0] == 's') {
            const char *v = rocksdb_iter_value(it, &vl);
            bench_event e;
            if (bench_rec_decode((const uint8_t *)v, vl, &e, BENCH_PAYLOAD))
                bench_die("rocksdb: bad record");
            fn(ctx, &e);
            n = 1;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    check(err, "iterate");
    return n;
}

static void rk_close(bench_store *s) {
    rocksdb_close(s->db);
    rocksdb_readoptions_destroy(s->ro);
    rocksdb_writeoptions_destroy(s->wo);
    rocksdb_options_destroy(s->opts);
    free(s);
}

const bench_backend BE_ROCKSDB = {
    .name = "rocksdb",
    .version = rk_version,
    .thread_safe = 1,
    .open = rk_open,
    .append = rk_append,
    .sync = rk_sync,
    .get = rk_get,
    .entity = rk_entity,
    .scope = rk_scope,
    .kind = rk_kind,
    .last = rk_last,
    .close = rk_close,
};
