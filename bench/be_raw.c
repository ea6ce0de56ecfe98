/* The ceiling: the simplest fast append-only log a programmer would write.
 *
 * One file, log.dat, of frames: u32 length | u32 crc32(record) | record
 * (the common record of bench.h). An append encodes its events into one
 * buffer and writes it with one write(); durable mode adds one fdatasync.
 * The indexes (id, entity, scope, kind -> seq; seq -> offset) live only in
 * memory and are rebuilt by scanning the file on open; a torn tail is cut.
 * Reads go through a read-only mmap of the file and check every CRC. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
    uint64_t *v;
    size_t n, cap;
} vec;

typedef struct {
    char *name; /* NULL = empty slot */
    vec seqs;
} name_slot;

typedef struct {
    name_slot *slots;
    size_t n, cap;
} name_map;

struct bench_store {
    int fd, durable;
    uint64_t size; /* bytes of valid frames */
    vec offs;      /* position in the file -> frame offset */
    struct id_slot {
        uint64_t hash, seq1; /* seq1 = seq + 1; 0 = empty slot */
    } * ids;                 /* open addressing by the id's hash */
    size_t ids_cap;
    name_map ents, scopes;
    vec kinds[256]; /* seqs by kind, folded by kind % 256 (raw_kind filters) */
    uint8_t *buf;
    size_t buf_cap;
    const uint8_t *map;
    size_t map_len;
};

static void vec_push(vec *v, uint64_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->v = bench_realloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static vec *name_vec(name_map *m, const char *name, size_t len, int create) {
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t oc = m->cap, nc = oc ? oc * 2 : 1024;
        name_slot *ns = bench_calloc(nc, sizeof *ns);
        for (size_t i = 0; i < oc; i++) {
            if (!m->slots[i].name) continue;
            size_t j = hash_bytes(m->slots[i].name, strlen(m->slots[i].name)) & (nc - 1);
            while (ns[j].name)
                j = (j + 1) & (nc - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    if (!m->cap) return NULL;
    for (size_t j = hash_bytes(name, len) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        name_slot *s = &m->slots[j];
        if (!s->name) {
            if (!create) return NULL;
            s->name = bench_malloc(len + 1);
            memcpy(s->name, name, len);
            s->name[len] = '\0';
            m->n++;
            return &s->seqs;
        }
        if (strlen(s->name) == len && !memcmp(s->name, name, len)) return &s->seqs;
    }
}

static void name_map_free(name_map *m) {
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].name);
        free(m->slots[i].seqs.v);
    }
    free(m->slots);
}

static void ids_put(bench_store *s, const uint8_t id[16], uint64_t seq) {
    if ((s->offs.n + 1) * 2 > s->ids_cap) {
        size_t oc = s->ids_cap, nc = oc ? oc * 2 : 1 << 16;
        struct id_slot *n = bench_calloc(nc, sizeof *n);
        for (size_t i = 0; i < oc; i++) {
            if (!s->ids[i].seq1) continue;
            size_t j = s->ids[i].hash & (nc - 1);
            while (n[j].seq1)
                j = (j + 1) & (nc - 1);
            n[j] = s->ids[i];
        }
        free(s->ids);
        s->ids = n;
        s->ids_cap = nc;
    }
    uint64_t h = hash_bytes(id, 16);
    size_t j = h & (s->ids_cap - 1);
    while (s->ids[j].seq1)
        j = (j + 1) & (s->ids_cap - 1);
    s->ids[j] = (struct id_slot){h, seq + 1};
}

static vec *kind_vec(bench_store *s, uint16_t kind) {
    return &s->kinds[kind % (sizeof s->kinds / sizeof s->kinds[0])];
}

/* The record's position in the file (not its event number: threads append out of order)
 * indexes offs, and the id table and the lists name it. */
static void index_add(bench_store *s, const bench_event *e, uint64_t off) {
    uint64_t pos = s->offs.n;
    ids_put(s, e->id, pos);
    vec_push(&s->offs, off);
    vec_push(name_vec(&s->ents, e->entity, e->entity_len, 1), pos);
    vec_push(name_vec(&s->scopes, e->scope, e->scope_len, 1), pos);
    vec_push(kind_vec(s, e->kind), pos);
}

static void ensure_map(bench_store *s) {
    if (s->map_len == s->size) return;
    if (s->map) munmap((void *)s->map, s->map_len);
    s->map = NULL;
    s->map_len = s->size;
    if (!s->size) return;
    s->map = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) bench_die("raw: mmap: %s", strerror(errno));
}

/* The record at off, CRC checked; 0 when the frame is torn or bad. */
static size_t frame_at(const uint8_t *base, uint64_t off, uint64_t limit, bench_event *e,
                       unsigned flags) {
    if (off + 8 > limit) return 0;
    uint32_t len, crc;
    memcpy(&len, base + off, 4);
    memcpy(&crc, base + off + 4, 4);
    if (len < BENCH_REC_HDR || off + 8 + len > limit) return 0;
    const uint8_t *rec = base + off + 8;
    if ((uint32_t)crc32(0, rec, len) != crc) return 0;
    if (bench_rec_decode(rec, len, e, flags)) return 0;
    return 8 + (size_t)len;
}

static const char *raw_version(void) {
    static char v[64];
    snprintf(v, sizeof v, "pwrite + fdatasync, CRC32 of zlib %s", zlibVersion());
    return v;
}

static bench_store *raw_open(const char *dir, const bench_opts *o) {
    bench_store *s = bench_calloc(1, sizeof *s);
    char path[4096];
    bench_path(path, sizeof path, dir, "log.dat");
    s->durable = o->durable;
    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->fd < 0) bench_die("raw: open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(s->fd, &st)) bench_die("raw: fstat: %s", strerror(errno));
    if (st.st_size) {
        const uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, s->fd, 0);
        if (m == MAP_FAILED) bench_die("raw: mmap: %s", strerror(errno));
        uint64_t off = 0;
        bench_event e;
        size_t n;
        while ((n = frame_at(m, off, (uint64_t)st.st_size, &e, 0)) > 0) {
            index_add(s, &e, off);
            off += n;
        }
        munmap((void *)m, (size_t)st.st_size);
        if (off != (uint64_t)st.st_size && ftruncate(s->fd, (off_t)off))
            bench_die("raw: cut torn tail: %s", strerror(errno));
        s->size = off;
    }
    bench_fsync_path(dir);
    return s;
}

static void raw_append(bench_store *s, const bench_event *evs, size_t n, bench_key *keys) {
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += 8 + bench_rec_len(&evs[i]);
    if (need > s->buf_cap) {
        s->buf_cap = need * 2;
        s->buf = bench_realloc(s->buf, s->buf_cap);
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)bench_rec_encode(&evs[i], s->buf + at + 8);
        uint32_t crc = (uint32_t)crc32(0, s->buf + at + 8, len);
        memcpy(s->buf + at, &len, 4);
        memcpy(s->buf + at + 4, &crc, 4);
        index_add(s, &evs[i], s->size + at);
        memcpy(keys[i].b, evs[i].id, 16);
        at += 8 + len;
    }
    ssize_t w = pwrite(s->fd, s->buf, at, (off_t)s->size);
    if (w != (ssize_t)at) bench_die("raw: write: %s", w < 0 ? strerror(errno) : "short write");
    s->size += at;
    if (s->durable && fdatasync(s->fd)) bench_die("raw: fdatasync: %s", strerror(errno));
}

static void raw_sync(bench_store *s) {
    if (fdatasync(s->fd)) bench_die("raw: fdatasync: %s", strerror(errno));
}

static size_t emit(bench_store *s, uint64_t seq, unsigned flags, bench_visit_fn fn, void *ctx) {
    bench_event e;
    if (!frame_at(s->map, s->offs.v[seq], s->size, &e, flags))
        bench_die("raw: bad frame at seq %llu", (unsigned long long)seq);
    fn(ctx, &e);
    return 1;
}

static size_t raw_get(bench_store *s, const bench_key *key, bench_visit_fn fn, void *ctx) {
    ensure_map(s);
    if (!s->ids_cap) return 0;
    uint64_t h = hash_bytes(key->b, 16);
    for (size_t j = h & (s->ids_cap - 1);; j = (j + 1) & (s->ids_cap - 1)) {
        if (!s->ids[j].seq1) return 0;
        uint64_t seq = s->ids[j].seq1 - 1;
        if (s->ids[j].hash == h && !memcmp(s->map + s->offs.v[seq] + 8 + 34, key->b, 16))
            return emit(s, seq, BENCH_PAYLOAD, fn, ctx);
    }
}

static size_t emit_all(bench_store *s, const vec *v, unsigned flags, bench_visit_fn fn, void *ctx) {
    if (!v) return 0;
    ensure_map(s);
    for (size_t i = 0; i < v->n; i++)
        emit(s, v->v[i], flags, fn, ctx);
    return v->n;
}

static size_t raw_entity(bench_store *s, const char *entity, unsigned flags, bench_visit_fn fn,
                         void *ctx) {
    return emit_all(s, name_vec(&s->ents, entity, strlen(entity), 0), flags, fn, ctx);
}

static size_t raw_scope(bench_store *s, const char *scope, bench_visit_fn fn, void *ctx) {
    return emit_all(s, name_vec(&s->scopes, scope, strlen(scope), 0), BENCH_PAYLOAD, fn, ctx);
}

static size_t raw_kind(bench_store *s, uint16_t kind, bench_visit_fn fn, void *ctx) {
    /* kinds share a vector when they fold together: filter by the record */
    vec *v = kind_vec(s, kind);
    ensure_map(s);
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        bench_event e;
        if (!frame_at(s->map, s->offs.v[v->v[i]], s->size, &e, BENCH_PAYLOAD))
            bench_die("raw: bad frame");
        if (e.kind != kind) continue;
        fn(ctx, &e);
        n++;
    }
    return n;
}

static size_t raw_last(bench_store *s, bench_visit_fn fn, void *ctx) {
    if (!s->offs.n) return 0;
    ensure_map(s);
    return emit(s, s->offs.n - 1, BENCH_PAYLOAD, fn, ctx);
}

static void raw_close(bench_store *s) {
    if (s->map) munmap((void *)s->map, s->map_len);
    if (fdatasync(s->fd) || close(s->fd)) bench_die("raw: close: %s", strerror(errno));
    name_map_free(&s->ents);
    name_map_free(&s->scopes);
    for (size_t i = 0; i < sizeof s->kinds / sizeof s->kinds[0]; i++)
        free(s->kinds[i].v);
    free(s->offs.v);
    free(s->ids);
    free(s->buf);
    free(s);
}

const bench_backend BE_RAW = {
    .name = "raw",
    .version = raw_version,
    .thread_safe = 0,
    .open = raw_open,
    .append = raw_append,
    .sync = raw_sync,
    .get = raw_get,
    .entity = raw_entity,
    .scope = raw_scope,
    .kind = raw_kind,
    .last = raw_last,
    .close = raw_close,
};
