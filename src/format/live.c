/* DIR/LIVE: the page a live writer shares with the readers of other processes (doc/FORMAT.md
 * "DIR/LIVE"). Fields are in the host's byte order and read and written with atomics: only
 * processes of one host share the page, and it describes a running writer, never data. */
#include "format/format.h"

#include <string.h>

static const uint8_t live_magic[8] = {'B', 'P', 'L', 'I', 'V', 'E', 0, 0};

#define U32(p, off) ((uint32_t *)(void *)((p) + (off)))
#define U64(p, off) ((uint64_t *)(void *)((p) + (off)))
#define LD32(p, off) __atomic_load_n(U32(p, off), __ATOMIC_RELAXED)
#define LD64(p, off) __atomic_load_n(U64(p, off), __ATOMIC_RELAXED)
#define ST32(p, off, v) __atomic_store_n(U32(p, off), (v), __ATOMIC_RELAXED)
#define ST64(p, off, v) __atomic_store_n(U64(p, off), (v), __ATOMIC_RELAXED)

void bp_live_init(uint8_t *p, const uint8_t uuid[16], uint64_t gen, uint64_t pid) {
    /* readers ignore the page while its generation is 0: it goes last */
    ST64(p, BP_LIVE_GEN, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memset(p + BP_LIVE_UUID, 0, BP_LIVE_SIZE - BP_LIVE_UUID);
    memcpy(p + BP_LIVE_UUID, uuid, 16);
    ST64(p, BP_LIVE_PID, pid);
    ST32(p, BP_LIVE_VERSION, BP_LIVE_FORMAT);
    memcpy(p, live_magic, sizeof live_magic);
    ST32(p, BP_LIVE_SLEEPERS, 0);
    __atomic_store_n(U64(p, BP_LIVE_GEN), gen, __ATOMIC_SEQ_CST);
}

void bp_live_set_mark(uint8_t *p, const bp_live_mark *m) {
    uint64_t seq = LD64(p, BP_LIVE_LOCK);
    ST64(p, BP_LIVE_LOCK, seq + 1); /* odd: being written */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    ST64(p, BP_LIVE_SEQ, m->seq);
    ST32(p, BP_LIVE_SEGNO, m->segno);
    ST32(p, BP_LIVE_END, m->end);
    ST32(p, BP_LIVE_STATE, m->state);
    ST32(p, BP_LIVE_COMPACTIONS, m->compactions);
    __atomic_store_n(U64(p, BP_LIVE_LOCK), seq + 2, __ATOMIC_RELEASE);
    __atomic_fetch_add(U32(p, BP_LIVE_WORD), 1, __ATOMIC_SEQ_CST);
}

bool bp_live_get_mark(const uint8_t *p, const uint8_t uuid[16], bp_live_mark *m) {
    uint8_t *q = (uint8_t *)p; /* atomics want a non-const pointer; nothing is written */
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t gen = __atomic_load_n(U64(q, BP_LIVE_GEN), __ATOMIC_ACQUIRE);
        if (!gen || memcmp(p, live_magic, sizeof live_magic) != 0 ||
            LD32(q, BP_LIVE_VERSION) != BP_LIVE_FORMAT || memcmp(p + BP_LIVE_UUID, uuid, 16) != 0)
            return false;
        uint64_t a = __atomic_load_n(U64(q, BP_LIVE_LOCK), __ATOMIC_ACQUIRE);
        if (a & 1) continue;
        m->gen = gen;
        m->pid = LD64(q, BP_LIVE_PID);
        m->seq = LD64(q, BP_LIVE_SEQ);
        m->segno = LD32(q, BP_LIVE_SEGNO);
        m->end = LD32(q, BP_LIVE_END);
        m->state = LD32(q, BP_LIVE_STATE);
        m->compactions = LD32(q, BP_LIVE_COMPACTIONS);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LD64(q, BP_LIVE_LOCK) == a && LD64(q, BP_LIVE_GEN) == gen) return true;
    }
    return false; /* a writer stopped half way through an update (killed): no mark */
}

uint32_t *bp_live_word(uint8_t *p) {
    return U32(p, BP_LIVE_WORD);
}

uint32_t *bp_live_sleepers(uint8_t *p) {
    return U32(p, BP_LIVE_SLEEPERS);
}
