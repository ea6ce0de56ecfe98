/* Helpers shared by the benchmark's backends: errors, allocation, paths and
 * the common binary record (see bench.h). */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void *bench_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) bench_die("out of memory (%zu bytes)", n);
    return p;
}

void *bench_calloc(size_t n, size_t m) {
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) bench_die("out of memory (%zu x %zu bytes)", n, m);
    return p;
}

void *bench_realloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) bench_die("out of memory (%zu bytes)", n);
    return p;
}

/* ---- directories: emptied (made when missing), bytes on disk */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb;
    (void)flag;
    (void)f;
    if (remove(p) && errno != ENOENT) bench_die("remove %s: %s", p, strerror(errno));
    return 0;
}

void bench_fresh_dir(const char *d) {
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(d, 0755) && errno != EEXIST) bench_die("mkdir %s: %s", d, strerror(errno));
}

static uint64_t g_du;
static int du_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)p;
    (void)f;
    if (flag == FTW_F) g_du += (uint64_t)sb->st_blocks * 512;
    return 0;
}

uint64_t bench_disk_usage(const char *d) {
    g_du = 0;
    nftw(d, du_one, 16, FTW_PHYS);
    return g_du;
}

/* batpak's index caches: the segment index files (DIR/segments/NNNNNN.fidx) and, with
 * g_ents, DIR/entities.ckpt; their sizes, or with g_blocks the blocks they take. */
static bool g_ents, g_blocks;
static int du_cache(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    size_t n = strlen(p);
    bool fidx = f->level >= 1 && n > 5 && !strcmp(p + n - 5, ".fidx");
    bool ents = g_ents && f->level == 1 && n >= 14 && !strcmp(p + n - 14, "/entities.ckpt");
    if (flag == FTW_F && (fidx || ents))
        g_du += g_blocks ? (uint64_t)sb->st_blocks * 512 : (uint64_t)sb->st_size;
    return 0;
}

static uint64_t cache_walk(const char *d, bool ents, bool blocks) {
    g_du = 0;
    g_ents = ents;
    g_blocks = blocks;
    nftw(d, du_cache, 16, FTW_PHYS);
    return g_du;
}

/* Read a file whole (into nothing): its pages end up in the page cache. */
static int warm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb;
    (void)f;
    if (flag != FTW_F) return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    static char buf[1 << 20];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
    return 0;
}

void bench_warm_files(const char *d) {
    nftw(d, warm_one, 16, FTW_PHYS);
}

uint64_t bench_fidx_bytes(const char *d) {
    return cache_walk(d, false, false);
}

uint64_t bench_cache_usage(const char *d) {
    return cache_walk(d, true, true);
}

void bench_path(char *out, size_t cap, const char *dir, const char *name) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
        bench_die("path too long: %s/%s", dir, name);
}

void bench_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return;
        bench_die("open %s: %s", path, strerror(errno));
    }
    if (fsync(fd) != 0) bench_die("fsync %s: %s", path, strerror(errno));
    close(fd);
}

static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v) {
    memcpy(p, &v, 8);
}
static uint16_t get16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

size_t bench_rec_len(const bench_event *e) {
    return BENCH_REC_HDR + (size_t)e->entity_len + e->scope_len + e->payload_len;
}

size_t bench_rec_encode(const bench_event *e, uint8_t *out) {
    put64(out, e->seq);
    put64(out + 8, e->eseq);
    put64(out + 16, e->ts);
    put16(out + 24, e->kind);
    put16(out + 26, e->entity_len);
    put16(out + 28, e->scope_len);
    put32(out + 30, e->payload_len);
    memcpy(out + 34, e->id, 16);
    uint8_t *p = out + BENCH_REC_HDR;
    memcpy(p, e->entity, e->entity_len);
    p += e->entity_len;
    memcpy(p, e->scope, e->scope_len);
    p += e->scope_len;
    memcpy(p, e->payload, e->payload_len);
    return bench_rec_len(e);
}

int bench_rec_decode(const uint8_t *buf, size_t len, bench_event *out, unsigned flags) {
    if (len < BENCH_REC_HDR) return -1;
    out->seq = get64(buf);
    out->eseq = get64(buf + 8);
    out->ts = get64(buf + 16);
    out->kind = get16(buf + 24);
    out->entity_len = get16(buf + 26);
    out->scope_len = get16(buf + 28);
    out->payload_len = get32(buf + 30);
    out->id = buf + 34;
    if (bench_rec_len(out) != len) return -1;
    out->entity = (const char *)buf + BENCH_REC_HDR;
    out->scope = out->entity + out->entity_len;
    out->payload = (flags & BENCH_PAYLOAD) ? (const uint8_t *)out->scope + out->scope_len : NULL;
    return 0;
}
