/* Reading one event by its slot (global_seq - 1): the one place that turns a slot into its
 * frame's hash, body or event (store.h bp_slot_read). A read is two steps: under ilock
 * (shared) bp_slot_take copies the slot's index record and takes a reference to its
 * segment; without the lock, bp_slot_finish (inline, store_impl.h) reads and checks the
 * frame. bp_get and the iterators do the first step under the hold of ilock in which they
 * find the slot. */
#include "store/store_impl.h"

#include <assert.h>

bool bp_slot_take(bp_store *s, uint64_t slot, unsigned how, bp_irec *r, bp_segref *ref) {
    *ref = (bp_segref)BP_SEGREF_INIT;
    if (slot >= s->idx.n || (!(how & BP_SLOT_UNPUBLISHED) && slot >= s->published)) return false;
    if (bp_store_rec(s, slot, r, 0) <= 0) { /* a hole (or an unreadable tier record) */
        bp_err_clear();
        return false;
    }
    return bp_segment_ref(s, r->segno, ref);
}

static bp_status not_found(const bp_store *s, uint64_t slot) {
    return bp_err(BP_ENOTFOUND, "%s: no event at global_seq %llu", s->dir,
                  (unsigned long long)slot + 1);
}

bp_status bp_slot_read(bp_store *s, uint64_t slot, unsigned how, bp_slot *out) {
    bp_irec r;
    bp_segref ref;
    pthread_rwlock_rdlock(&s->ilock);
    bool found = bp_slot_take(s, slot, how, &r, &ref);
    pthread_rwlock_unlock(&s->ilock);
    return found ? bp_slot_finish(s, &r, &ref, how, out) : not_found(s, slot);
}

bp_status bp_slot_read_locked(bp_store *s, uint64_t slot, unsigned how, bp_slot *out) {
    assert(!(how & BP_SLOT_EVENT));
    bp_irec r;
    bp_segref ref;
    if (!bp_slot_take(s, slot, how, &r, &ref)) return not_found(s, slot);
    return bp_slot_finish(s, &r, &ref, (how & ~BP_SLOT_EVENT) | BP_SLOT_LOCKED, out);
}

bp_status bp_store_entity_hash(bp_store *s, int64_t eid, uint64_t clock, bp_hash *out) {
    bp_irec r;
    bp_segref ref;
    bool found = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&s->ilock);
        int64_t slot = bp_store_clock_slot(s, eid, clock); /* (clocks <= base: compacted) */
        found = slot >= 0 && bp_slot_take(s, (uint64_t)slot, 0, &r, &ref);
        pthread_rwlock_unlock(&s->ilock);
        if (slot != -2) break;
        bp_six_repair(s); /* a tier file could not answer: then from memory */
    }
    if (!found)
        return bp_err(BP_ENOTFOUND, "no published event at clock %llu", (unsigned long long)clock);
    bp_slot sl;
    bp_status rc = bp_slot_finish(s, &r, &ref, BP_SLOT_HASH, &sl);
    if (!rc) *out = sl.hash;
    return rc;
}
