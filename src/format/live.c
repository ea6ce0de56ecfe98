/* DIR/LIVE: the page a live writer shares with the readers of other processes (doc/FORMAT.md
 * "DIR/LIVE"). Fields are in the host's byte order and read and written with atomics: only
 * processes of one host share the page, and it describes a running writer, never data. */
#include "format/format.h"

#include <string.h>

static const uint8_t live_magic[8] = {'B', 'P', 'L', 'I', 'V', 'E', 0, 0};

#define U32(p, off) ((uint32_t *)(void *)((p) + (off)))
#define U64(p, off) ((uint64_t *)(void *)((p) + (off)))
/* Loads acquire and stores release (no fences: ThreadSanitizer does not model them): a reader
 * that loads a field a writer stored after making its lock odd then loads the lock odd or
 * moved on, so a sequence lock's second look sees the change. */
#define LD32(p, off) __atomic_load_n(U32(p, off), __ATOMIC_ACQUIRE)
#define LD64(p, off) __atomic_load_n(U64(p, off), __ATOMIC_ACQUIRE)
#define ST32(p, off, v) __atomic_store_n(U32(p, off), (v), __ATOMIC_RELEASE)
#define ST64(p, off, v) __atomic_store_n(U64(p, off), (v), __ATOMIC_RELEASE)

/* A page of this store, ready (its generation set): the generation, else 0. */
static uint64_t ready_gen(const uint8_t *p, const uint8_t uuid[16]) {
    uint8_t *q = (uint8_t *)p;
    uint64_t gen = __atomic_load_n(U64(q, BP_LIVE_GEN), __ATOMIC_ACQUIRE);
    if (!gen || memcmp(p, live_magic, sizeof live_magic) != 0 ||
        LD32(q, BP_LIVE_VERSION) != BP_LIVE_FORMAT || memcmp(p + BP_LIVE_UUID, uuid, 16) != 0)
        return 0;
    return gen;
}

void bp_live_init(uint8_t *p, const uint8_t uuid[16], uint64_t gen, uint64_t pid,
                  const void *report, size_t report_len) {
    /* readers ignore the page while its generation is 0: it goes last */
    ST64(p, BP_LIVE_GEN, 0);
    memset(p + BP_LIVE_UUID, 0, BP_LIVE_SIZE - BP_LIVE_UUID);
    memcpy(p + BP_LIVE_UUID, uuid, 16);
    ST64(p, BP_LIVE_PID, pid);
    if (report_len > BP_LIVE_REPORT_MAX) report_len = BP_LIVE_REPORT_MAX;
    memcpy(p + BP_LIVE_REPORT, report, report_len);
    ST32(p, BP_LIVE_REPORT_LEN, (uint32_t)report_len);
    ST32(p, BP_LIVE_VERSION, BP_LIVE_FORMAT);
    memcpy(p, live_magic, sizeof live_magic);
    ST32(p, BP_LIVE_SLEEPERS, 0);
    __atomic_store_n(U64(p, BP_LIVE_GEN), gen, __ATOMIC_SEQ_CST);
}

/* A sequence lock at lock_off: a writer makes it odd, stores its block, makes it even. */
static uint64_t seq_begin(uint8_t *p, size_t lock_off) {
    uint64_t seq = LD64(p, lock_off);
    ST64(p, lock_off, seq + 1); /* odd: being written */
    return seq;
}
static void seq_end(uint8_t *p, size_t lock_off, uint64_t seq) {
    ST64(p, lock_off, seq + 2);
}

/* A reader of the block under the lock at lock_off: load(q, out) between two looks at the
 * lock (even, the same) and at the page's generation (set, the same). The generation, or 0
 * when the page is not a ready one of this store or a writer stopped half way through an
 * update (killed). */
static uint64_t seq_read(const uint8_t *p, const uint8_t uuid[16], size_t lock_off,
                         void (*load)(uint8_t *q, void *out), void *out) {
    uint8_t *q = (uint8_t *)p; /* atomics want a non-const pointer; nothing is written */
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t gen = ready_gen(p, uuid);
        if (!gen) return 0;
        uint64_t a = LD64(q, lock_off);
        if (a & 1) continue;
        load(q, out);
        if (LD64(q, lock_off) == a && LD64(q, BP_LIVE_GEN) == gen) return gen;
    }
    return 0;
}

void bp_live_set_mark(uint8_t *p, const bp_live_mark *m) {
    uint64_t seq = seq_begin(p, BP_LIVE_LOCK);
    ST64(p, BP_LIVE_SEQ, m->seq);
    ST32(p, BP_LIVE_SEGNO, m->segno);
    ST32(p, BP_LIVE_END, m->end);
    ST32(p, BP_LIVE_STATE, m->state);
    ST32(p, BP_LIVE_COMPACTIONS, m->compactions);
    seq_end(p, BP_LIVE_LOCK, seq);
    __atomic_fetch_add(U32(p, BP_LIVE_WORD), 1, __ATOMIC_SEQ_CST);
}

static void load_mark(uint8_t *q, void *out) {
    bp_live_mark *m = out;
    m->pid = LD64(q, BP_LIVE_PID);
    m->seq = LD64(q, BP_LIVE_SEQ);
    m->segno = LD32(q, BP_LIVE_SEGNO);
    m->end = LD32(q, BP_LIVE_END);
    m->state = LD32(q, BP_LIVE_STATE);
    m->compactions = LD32(q, BP_LIVE_COMPACTIONS);
}

bool bp_live_get_mark(const uint8_t *p, const uint8_t uuid[16], bp_live_mark *m) {
    return (m->gen = seq_read(p, uuid, BP_LIVE_LOCK, load_mark, m)) != 0;
}

/* Words copied one atomic load or store at a time (the other side may be at work). */
static void words_out(uint8_t *p, size_t off, const void *src, size_t n) {
    for (size_t i = 0; i < n / 8; i++) {
        uint64_t w;
        memcpy(&w, (const uint8_t *)src + i * 8, 8);
        ST64(p, off + i * 8, w);
    }
}
static void words_in(uint8_t *p, size_t off, void *dst, size_t n) {
    for (size_t i = 0; i < n / 8; i++) {
        uint64_t w = LD64(p, off + i * 8);
        memcpy((uint8_t *)dst + i * 8, &w, 8);
    }
}

void bp_live_set_figures(uint8_t *p, const bp_live_figs *f) {
    uint64_t seq = seq_begin(p, BP_LIVE_FIGS_LOCK);
    uint64_t head[4] = {f->appends, f->fsyncs, f->lat_sum_us, f->failed};
    words_out(p, BP_LIVE_FIGS, head, sizeof head);
    words_out(p, BP_LIVE_MODS, f->mods, sizeof f->mods);
    words_out(p, BP_LIVE_LAT, f->lat, sizeof f->lat);
    words_out(p, BP_LIVE_FAILED_MSG, f->failed_msg, sizeof f->failed_msg);
    seq_end(p, BP_LIVE_FIGS_LOCK, seq);
}

static void load_figures(uint8_t *q, void *out) {
    bp_live_figs *f = out;
    uint64_t head[4];
    words_in(q, BP_LIVE_FIGS, head, sizeof head);
    words_in(q, BP_LIVE_MODS, f->mods, sizeof f->mods);
    words_in(q, BP_LIVE_LAT, f->lat, sizeof f->lat);
    words_in(q, BP_LIVE_FAILED_MSG, f->failed_msg, sizeof f->failed_msg);
    f->appends = head[0];
    f->fsyncs = head[1];
    f->lat_sum_us = head[2];
    f->failed = head[3];
}

bool bp_live_get_figures(const uint8_t *p, const uint8_t uuid[16], bp_live_figs *f) {
    if (!seq_read(p, uuid, BP_LIVE_FIGS_LOCK, load_figures, f)) return false;
    f->failed_msg[sizeof f->failed_msg - 1] = 0;
    return true;
}

bool bp_live_get_report(const uint8_t *p, const uint8_t uuid[16], void *out, size_t len) {
    uint64_t gen = ready_gen(p, uuid);
    uint32_t have = gen ? LD32((uint8_t *)p, BP_LIVE_REPORT_LEN) : 0;
    if (!gen || have > BP_LIVE_REPORT_MAX) return false;
    memset(out, 0, len);
    memcpy(out, p + BP_LIVE_REPORT, have < len ? have : len);
    return LD64((uint8_t *)p, BP_LIVE_GEN) == gen; /* (not set up anew meanwhile) */
}

uint32_t *bp_live_word(uint8_t *p) {
    return U32(p, BP_LIVE_WORD);
}

uint32_t *bp_live_sleepers(uint8_t *p) {
    return U32(p, BP_LIVE_SLEEPERS);
}
