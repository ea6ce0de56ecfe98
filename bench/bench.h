/*
 * bench.h — the benchmark's backend interface.
 *
 * One program (bench/bench.c) runs every workload on every backend: this
 * library, a raw append-only file (the ceiling), SQLite (WAL), LMDB and
 * RocksDB. Each backend lives in its own file (bench/be_*.c) and exports a
 * `const bench_backend BE_<NAME>`. The harness generates the events, times
 * the calls, verifies every read and prints one line per figure.
 *
 * The logical work is the same for every backend: each event has an
 * entity, a scope, a kind, a 16-byte id, a timestamp and a payload; the
 * store keeps them durable per the mode and answers five reads:
 * by id, one entity in order (with or without payloads), one scope in
 * global order, one kind in global order, and the last event.
 */
#ifndef BATPAK_BENCH_H
#define BATPAK_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One event. On the write path it points into the generated data set; on the
 * read path the backend fills it with pointers into its own memory that stay
 * valid only during the visit callback. */
typedef struct bench_event {
    uint64_t seq;       /* global order, 0-based, dense (assigned by the harness) */
    uint64_t eseq;      /* per-entity order, 0-based, dense */
    const char *entity; /* NUL-terminated on writes; entity_len bytes on reads */
    uint16_t entity_len;
    const char *scope; /* NUL-terminated on writes */
    uint16_t scope_len;
    uint16_t kind;          /* 0x1000..0x1FFF */
    uint64_t ts;            /* microseconds */
    const uint8_t *id;      /* 16 bytes, random-looking */
    const uint8_t *payload; /* NULL on reads without payloads */
    uint32_t payload_len;
} bench_event;

/* The key a backend hands back for each appended event, used later by get.
 * Peers store the harness id; batpak assigns its own event id. */
typedef struct bench_key {
    uint8_t b[16];
} bench_key;

typedef void (*bench_visit_fn)(void *ctx, const bench_event *e);

typedef struct bench_opts {
    int durable;       /* 1: every append() is durable (fdatasync) when it returns */
    int threads;       /* >1: append() is called from this many threads at once */
    size_t map_mb;     /* LMDB map size */
    size_t segment_kb; /* batpak: segment size in KiB (0: the default) */
} bench_opts;

typedef struct bench_store bench_store;

/* The state of the projection workload: a little-endian u32 from each payload's first 4
 * bytes summed, and the events folded. */
typedef struct bench_fold {
    uint64_t sum;
    uint64_t events;
} bench_fold;
static inline void bench_fold_apply(bench_fold *f, const uint8_t *payload, size_t len) {
    uint32_t v = 0;
    memcpy(&v, payload, len < 4 ? len : 4);
    f->sum += v;
    f->events++;
}

/* Read flags */
#define BENCH_PAYLOAD 1 /* the reader wants the payload bytes */

typedef struct bench_backend {
    const char *name;
    const char *(*version)(void);
    /* 1 if append() may be called from several threads at once; otherwise the
     * harness serialises the calls with a mutex. */
    int thread_safe;
    /* Open (create or recover) the store in directory dir (which exists). */
    bench_store *(*open)(const char *dir, const bench_opts *o);
    /* Append n events (1 <= n <= 256) as ONE atomic commit; durable before
     * returning when o->durable. Fill keys[0..n). */
    void (*append)(bench_store *s, const bench_event *evs, size_t n, bench_key *keys);
    /* Make every committed event durable. */
    void (*sync)(bench_store *s);
    /* Reads call fn for each event and return how many they visited. */
    size_t (*get)(bench_store *s, const bench_key *key, bench_visit_fn fn, void *ctx);
    size_t (*entity)(bench_store *s, const char *entity, unsigned flags, bench_visit_fn fn,
                     void *ctx); /* eseq order */
    size_t (*scope)(bench_store *s, const char *scope, bench_visit_fn fn,
                    void *ctx); /* seq order, with payloads */
    size_t (*kind)(bench_store *s, uint16_t kind, bench_visit_fn fn,
                   void *ctx);                                    /* seq order, with payloads */
    size_t (*last)(bench_store *s, bench_visit_fn fn, void *ctx); /* the event of max seq */
    /* Fold one entity's events into a bench_fold state (bench_fold_apply on each event in
     * eseq order). NULL: the harness reads the entity with payloads and folds every time;
     * batpak answers from its projection cache. */
    void (*fold)(bench_store *s, const char *entity, struct bench_fold *out);
    /* batpak only (NULL elsewhere): the projection workload with typed payloads, run in
     * dir: entities x per_entity typed events, each entity folded cold and again after one
     * more event; p50s into *cold_ms and *again_us. */
    void (*fold_typed)(const char *dir, size_t entities, size_t per_entity, double *cold_ms,
                       double *again_us);
    /* batpak only (NULL elsewhere): n events appended (unsynced, ev/s into *append), then
     * delivered through a process-local cursor worker (*local) and a checkpointed one
     * persisting every 1,000 events (*ckpt), all in ev/s. */
    void (*deliver)(const char *dir, size_t n, size_t payload, double *append, double *local,
                    double *ckpt);
    /* batpak only (NULL elsewhere): compact the store, keeping the newest keep_last events
     * of each entity; returns the events removed (the seq holes left). */
    uint64_t (*compact)(bench_store *s, uint64_t keep_last);
    void (*close)(bench_store *s);
} bench_backend;

/* ---- helpers for backends (bench/util.c) ---- */
void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *bench_malloc(size_t n);
void *bench_calloc(size_t n, size_t m);
void *bench_realloc(void *p, size_t n);
void bench_path(char *out, size_t cap, const char *dir, const char *name);
void bench_fsync_path(const char *path);    /* file or directory; ENOENT is fine */
void bench_fresh_dir(const char *dir);      /* remove everything in it; make it when missing */
uint64_t bench_disk_usage(const char *dir); /* bytes allocated to the files under dir */
/* bytes (file sizes) of batpak's segment index files, dir/segments/NNNNNN.fidx */
uint64_t bench_fidx_bytes(const char *dir);
/* Read every file under dir once, so that its pages are in the page cache ("warm"). */
void bench_warm_files(const char *dir);
/* blocks of batpak's index caches: the segment index files and DIR/entities.ckpt */
uint64_t bench_cache_usage(const char *dir);

/* ---- the harness (bench/bench.c), for workloads in files of their own */
/* Event i of the data set (entity, scope, kind, id, payload as every workload makes them,
 * with the --entities and --payload of the run); id_buf holds the 16-byte id. */
void bench_gen(uint64_t i, bench_event *e, uint8_t id_buf[16]);
/* The big-store workload (bench/big.c): batpak only. */
void bench_big(const char *cache, const char *cli, size_t n, size_t entities, size_t payload,
               size_t reps);
int bench_big_probe(int argc, char **argv); /* the fresh process it execs */

/* The record that raw, LMDB and RocksDB store as the value (SQLite stores
 * columns). Little-endian, a 50-byte header then the variable parts:
 *   0 seq u64 | 8 eseq u64 | 16 ts u64 | 24 kind u16 | 26 entity_len u16 |
 *   28 scope_len u16 | 30 payload_len u32 | 34 id[16] | 50 entity | scope | payload */
#define BENCH_REC_HDR 50
size_t bench_rec_len(const bench_event *e);
size_t bench_rec_encode(const bench_event *e, uint8_t *out); /* returns the length */
int bench_rec_decode(const uint8_t *buf, size_t len, bench_event *out, unsigned flags);

static inline void bench_put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t bench_get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
