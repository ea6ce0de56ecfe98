/* segfile.c: readers' views of segment files, reference-counted, opened on demand and cached
 * within bounds; the writer's descriptors of sealed segments. The rules are stated in
 * store_impl.h (bp_segfile). */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

uint32_t bp__segfile_max;

/* Segfiles the cache keeps (each a mapping: address space and one of vm.max_map_count's
 * entries, no descriptor once sealed), and at most this many with a descriptor. */
#define SEGFILE_MAX 1024
#define SEGFILE_FD_MAX 64

void bp_segfile_limits(bp_store *s) {
    uint64_t fd = bp_pf_nofile_limit() / 8;
    if (fd > SEGFILE_FD_MAX) fd = SEGFILE_FD_MAX;
    if (fd < 2) fd = 2;
    s->sf_fd_max = (uint32_t)fd;
    s->sf_max = bp__segfile_max ? bp__segfile_max : SEGFILE_MAX;
}

void bp_segfile_unref(bp_segfile *f) {
    if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL)) return;
    bp_pf_unmap(f->p, f->len);
    bp_file x = {f->fd, NULL, -1};
    bp_pf_close(&x);
    free(f);
}

/* Segment segno for readers, made from f (its descriptor, which it takes). grows: the active
 * segment of a writable store, whose mapping leaves room to grow into (segment_size plus one
 * largest frame) and which keeps its descriptor for frames past it, or a read-only handle's newest
 * unsealed one (which it follows: bp_store_refresh); any other maps its exact size and closes it. A
 * failed mapping keeps the descriptor: reads fall back to pread. A read-only handle maps a
 * live writer's unsealed segment too: it reads only the frames it indexed, and no writer
 * cuts a file below a whole frame (recovery cuts torn tails, a close the zeros ahead), so no
 * page it touches can go. 0 or -errno. */
static int segfile_make(bp_store *s, uint32_t segno, bp_file *f, bool grows, bp_segfile **out) {
    uint64_t size = 0;
    int e = bp_pf_size(f, &size);
    bp_segfile *sf = e ? NULL : calloc(1, sizeof *sf);
    if (!e && !sf) e = -ENOMEM;
    if (e) {
        bp_pf_close(f);
        return e;
    }
    sf->refs = 1;
    sf->segno = segno;
    sf->fd = f->fd;
    uint64_t len = size;
    if (grows)
        len = (size > s->opts.segment_size ? size : s->opts.segment_size) + BP_FRAME_MAX_BODY +
              BP_FRAME_PREFIX;
    if (len && bp_pf_map_read(f, len, &sf->p) == 0) {
        sf->len = len;
        if (!grows) {
            bp_pf_close(f);
            sf->fd = -1;
        }
    } else {
        sf->p = NULL;
    }
    *out = sf;
    return 0;
}

/* The same from the file at segno's name (with suffix) now. */
static int segfile_open(bp_store *s, uint32_t segno, const char *suffix, bool grows,
                        bp_segfile **out) {
    char path[4200];
    bp_segment_path(s, segno, suffix, path, sizeof path);
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, s->fault, path, BP_O_READ);
    return e ? e : segfile_make(s, segno, &f, grows, out);
}

int bp_segfile_adopt(bp_store *s, uint32_t i, const bp_file *f, bool grows) {
    bp_file d;
    bp_segfile *sf;
    int e = bp_pf_dup(f, &d);
    if (!e) e = segfile_make(s, s->segs[i].segno, &d, grows, &sf);
    if (e) return e;
    bp_segfile *old = bp_segment_uncache(s, &s->segs[i]);
    bp_segment_cache(s, &s->segs[i], sf);
    s->segs[i].rd_keep = sf->p != NULL; /* (not a descriptor for pread: those are bounded) */
    bp_segfile_unref(old);
    return 0;
}

/* [i] held. Segment segno's place in s->segs, or false when the store has no such segment. */
static bool seg_index(const bp_store *s, uint32_t segno, uint32_t *i) {
    if (!s->n_segs || segno < s->segs[0].segno || segno - s->segs[0].segno >= s->n_segs)
        return false;
    *i = segno - s->segs[0].segno;
    return true;
}

void bp_segment_prefetch(bp_store *s, uint32_t segno, uint32_t offset, uint32_t len) {
    uint32_t i;
    if (!seg_index(s, segno, &i)) return;
    const bp_segfile *f = __atomic_load_n(&s->segs[i].rd, __ATOMIC_ACQUIRE);
    if (!f || !f->p || (uint64_t)offset + len > f->len) return;
    for (uint32_t o = 0; o < len; o += 64) /* (the lines of the frame) */
        __builtin_prefetch(f->p + offset + o);
}

bool bp_segment_ref(bp_store *s, uint32_t segno, bp_segref *out) {
    *out = (bp_segref)BP_SEGREF_INIT;
    uint32_t i;
    if (!seg_index(s, segno, &i)) return false;
    bp_segment *seg = &s->segs[i];
    bp_segfile *f = __atomic_load_n(&seg->rd, __ATOMIC_ACQUIRE);
    if (!f) {
        bp_segfile *nf;
        int e =
            segfile_open(s, segno, "", i + 1 == s->n_segs && (!s->read_only || !seg->sealed), &nf);
        if (e) {
            out->err = e;
            return true;
        }
        bp_segfile *expected = NULL;
        if (__atomic_compare_exchange_n(&seg->rd, &expected, nf, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            f = nf;
            uint32_t n = __atomic_add_fetch(&s->sf_cached, 1, __ATOMIC_RELAXED);
            uint32_t nfd = nf->fd >= 0 ? __atomic_add_fetch(&s->sf_cached_fd, 1, __ATOMIC_RELAXED)
                                       : __atomic_load_n(&s->sf_cached_fd, __ATOMIC_RELAXED);
            if (n > s->sf_max || nfd > s->sf_fd_max)
                __atomic_store_n(&s->sf_trim, 1, __ATOMIC_RELAXED);
        } else { /* another reader opened it first */
            bp_segfile_unref(nf);
            f = expected;
        }
    }
    /* the store's reference is there while ilock is held shared: f is alive */
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
    if (!__atomic_load_n(&seg->rd_used, __ATOMIC_RELAXED))
        __atomic_store_n(&seg->rd_used, 1, __ATOMIC_RELAXED);
    out->sf = f;
    return true;
}

int bp_segfile_open(bp_store *s, uint32_t segno, const char *suffix, bp_segfile **out) {
    return segfile_open(s, segno, suffix, false, out);
}

void bp_segment_cache(bp_store *s, bp_segment *seg, bp_segfile *f) {
    __atomic_store_n(&seg->rd, f, __ATOMIC_RELEASE);
    uint32_t n = __atomic_add_fetch(&s->sf_cached, 1, __ATOMIC_RELAXED);
    uint32_t nfd = f->fd >= 0 ? __atomic_add_fetch(&s->sf_cached_fd, 1, __ATOMIC_RELAXED)
                              : __atomic_load_n(&s->sf_cached_fd, __ATOMIC_RELAXED);
    if (n > s->sf_max || nfd > s->sf_fd_max) __atomic_store_n(&s->sf_trim, 1, __ATOMIC_RELAXED);
}

bp_segfile *bp_segment_uncache(bp_store *s, bp_segment *seg) {
    bp_segfile *f = seg->rd;
    if (!f) return NULL;
    __atomic_store_n(&seg->rd, NULL, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&s->sf_cached, 1, __ATOMIC_RELAXED);
    if (f->fd >= 0) __atomic_sub_fetch(&s->sf_cached_fd, 1, __ATOMIC_RELAXED);
    return f;
}

/* Evict segfiles (clock order: one read since the hand last passed is spared once) until
 * the cache is an eighth under its bound on segfiles and a quarter under the one on
 * descriptors. Never the active segment's. [i] NOT held. */
static void trim(bp_store *s) {
    if (!__atomic_exchange_n(&s->sf_trim, 0, __ATOMIC_ACQ_REL)) return; /* one at a time */
    uint32_t cached = __atomic_load_n(&s->sf_cached, __ATOMIC_RELAXED);
    uint32_t cap = cached / 8 + __atomic_load_n(&s->sf_cached_fd, __ATOMIC_RELAXED) + 16;
    bp_segfile **victims = malloc(cap * sizeof *victims);
    if (!victims) return; /* the next open over the bound tries again */
    uint32_t nv = 0;
    pthread_rwlock_wrlock(&s->ilock);
    uint32_t n = s->n_segs, active = !s->read_only && n ? n - 1 : UINT32_MAX;
    cached = __atomic_load_n(&s->sf_cached, __ATOMIC_RELAXED);
    uint32_t cached_fd = __atomic_load_n(&s->sf_cached_fd, __ATOMIC_RELAXED);
    uint32_t want = cached > s->sf_max ? cached - (s->sf_max - s->sf_max / 8) : 0;
    uint32_t want_fd = cached_fd > s->sf_fd_max ? cached_fd - (s->sf_fd_max - s->sf_fd_max / 4) : 0;
    for (uint64_t step = 0; n && step < 2ull * n && (want || want_fd) && nv < cap; step++) {
        uint32_t i = s->sf_hand++ % n;
        bp_segment *g = &s->segs[i];
        bp_segfile *f = g->rd;
        if (!f || i == active || g->rd_keep || (!want && f->fd < 0)) continue;
        if (g->rd_used) {
            __atomic_store_n(&g->rd_used, 0, __ATOMIC_RELAXED);
            continue;
        }
        if (want) want--;
        if (want_fd && f->fd >= 0) want_fd--;
        victims[nv++] = bp_segment_uncache(s, g);
    }
    s->sf_hand %= n ? n : 1;
    pthread_rwlock_unlock(&s->ilock);
    for (uint32_t i = 0; i < nv; i++) /* holders keep theirs: unmapped by the last of them */
        bp_segfile_unref(victims[i]);
    free(victims);
}

void bp_segref_drop(bp_segref *ref) {
    bp_segfile_unref(ref->sf);
    ref->sf = NULL;
}

void bp_segref_done(bp_store *s, bp_segref *ref) {
    bp_segref_drop(ref);
    if (__atomic_load_n(&s->sf_trim, __ATOMIC_RELAXED)) trim(s);
}

void bp_segref_keep(bp_store *s, bp_segref *ref, bp_segfile **hold) {
    bp_segfile *old = *hold;
    *hold = NULL;
    if (ref->mapped) {
        *hold = ref->sf;
        ref->sf = NULL;
    }
    bp_segfile_unref(old);
    bp_segref_done(s, ref);
}

void bp_segment_close_writer(bp_store *s, bp_segment *seg) {
    if (seg->f.fd < 0) return;
    if (s->syncing) { /* the leader's fdatasync may be on a copy of it: it closes it after */
        if (s->n_close_later == s->close_later_cap) {
            uint32_t nc = s->close_later_cap ? s->close_later_cap * 2 : 4;
            int *v = realloc(s->close_later, nc * sizeof *v);
            if (!v) return; /* stays open until close: the store closes every segment's */
            s->close_later = v;
            s->close_later_cap = nc;
        }
        s->close_later[s->n_close_later++] = seg->f.fd;
        seg->f.fd = -1;
        return;
    }
    bp_pf_close(&seg->f);
}

void bp_close_later_flush(bp_store *s) {
    for (uint32_t i = 0; i < s->n_close_later; i++) {
        bp_file f = {s->close_later[i], NULL, -1};
        bp_pf_close(&f);
    }
    s->n_close_later = 0;
}
