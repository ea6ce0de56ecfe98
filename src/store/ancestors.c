/* walk_ancestors: from an event back along its entity's hash chain, or
 * along causation links across entities. */
#include "store/store_impl.h"

#include <stdlib.h>

/* Read the published event at slot into o (which keeps its frame: fn reads the event after
 * this returns). BP_ENOTFOUND when the slot is not published. */
static bp_status read_slot(bp_store *s, uint64_t slot, bp_owned_event *o) {
    bp_slot sl = {.ev = o};
    return bp_slot_read(s, slot, BP_SLOT_EVENT, &sl);
}

/* Slot of the next ancestor of ev, or -1 when ev has none in this store. */
static int64_t ancestor_slot(bp_store *s, const bp_event *ev, bp_walk_mode mode) {
    int64_t slot = -1;
    bool repair = false;
    pthread_rwlock_rdlock(&s->ilock);
    if (mode == BP_WALK_CAUSATION) {
        if (ev->has_causation) slot = bp_store_find_id(s, &ev->causation_id, &repair);
    } else if (ev->clock > 1) { /* (at or before its base: compacted away) */
        int64_t e = bp_index_entity(&s->idx, ev->entity, strlen(ev->entity));
        if (e >= 0) slot = bp_store_clock_slot(s, e, ev->clock - 1);
        if (slot == -2) repair = true; /* a tier file could not answer: the caller tries again */
    }
    if (slot >= 0 && (uint64_t)slot >= s->published) slot = -1;
    pthread_rwlock_unlock(&s->ilock);
    if (repair) bp_six_repair(s);
    return slot; /* -2: again, after the repair */
}

bp_status bp_walk_ancestors(bp_store *s, const bp_id *id, bp_walk_mode mode, size_t limit,
                            bp_walk_fn fn, void *ctx) {
    if (!s || !id || !fn) return bp_err(BP_EINVAL, "bp_walk_ancestors: NULL argument");
    if (mode != BP_WALK_CHAIN && mode != BP_WALK_CAUSATION)
        return bp_err(BP_EINVAL, "bp_walk_ancestors: unknown mode %d", (int)mode);
    char idt[37];
    bp_id_format(id, idt);
    bool repair = false;
    pthread_rwlock_rdlock(&s->ilock);
    int64_t slot = bp_store_find_id(s, id, &repair);
    uint64_t published = s->published;
    pthread_rwlock_unlock(&s->ilock);
    if (repair) bp_six_repair(s);
    if (slot < 0 || (uint64_t)slot >= published)
        return bp_err(BP_ENOTFOUND, "event %s: not found", idt);
    /* two events: the child and its ancestor, swapped at each step */
    bp_owned_event *o = calloc(2, sizeof *o);
    if (!o) return bp_err(BP_ENOMEM, "bp_walk_ancestors: out of memory");
    bp_owned_event *child = &o[0], *anc = &o[1];
    bp_status rc = read_slot(s, (uint64_t)slot, child);
    /* there are no more distinct ancestors than events: a longer walk is a cycle */
    for (uint64_t depth = 1; !rc && (!limit || depth <= limit); depth++) {
        int64_t a = ancestor_slot(s, &child->ev, mode);
        if (a == -2) a = ancestor_slot(s, &child->ev, mode); /* after the repair */
        if (a == -2) {
            rc = bp_err(BP_ENOMEM,
                        "event %s: a segment index file is damaged and there is no "
                        "memory to index its segment otherwise",
                        idt);
            break;
        }
        if (a < 0) break;
        if (depth > published) {
            rc = bp_err(BP_ECORRUPT, "event %s: causation links form a cycle", idt);
            break;
        }
        if ((rc = read_slot(s, (uint64_t)a, anc))) break;
        if (mode == BP_WALK_CHAIN &&
            memcmp(anc->ev.event_hash.b, child->ev.prev_hash.b, sizeof(bp_hash)) != 0) {
            rc = bp_err(BP_ECORRUPT,
                        "entity '%s': the event at clock %llu does not hash to the prev_hash of "
                        "the one at clock %llu",
                        child->ev.entity, (unsigned long long)anc->ev.clock,
                        (unsigned long long)child->ev.clock);
            break;
        }
        rc = fn(ctx, &anc->ev, (uint32_t)depth);
        if (rc == BP_DONE) {
            rc = BP_OK;
            break;
        }
        if (rc) break;
        bp_owned_event *t = child;
        child = anc;
        anc = t;
    }
    for (int i = 0; i < 2; i++)
        bp_owned_event_clear(&o[i]);
    free(o);
    return rc;
}
