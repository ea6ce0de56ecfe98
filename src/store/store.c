/* The narrow interface of store.h: what the modules built on the store may ask of it (the
 * handle's facts, the publish watermark and hook, index lookups), so that bp_store stays
 * an incomplete type to them. Reading by slot is in slot.c, waiting in notify.c. */
#include "store/store_impl.h"

void *bp_store_module_state(const bp_store *s, size_t i) {
    return i < s->n_mods ? s->mstate[i] : NULL;
}

void bp_store_set_sign_hook(bp_store *s, void (*fn)(void *ctx, bp_receipt *r), void *ctx) {
    s->sign_fn = fn;
    s->sign_ctx = ctx;
}

bool bp_store_read_only(const bp_store *s) {
    return s->read_only;
}

bp_fault *bp_store_fault(const bp_store *s) {
    return s->fault;
}

void bp_store_latency(const bp_store *s, uint64_t counts[BP_LAT_BUCKETS], uint64_t *sum_us) {
    for (unsigned b = 0; b < BP_LAT_BUCKETS; b++)
        counts[b] = __atomic_load_n(&s->lat[b], __ATOMIC_RELAXED);
    *sum_us = __atomic_load_n(&s->lat_sum_us, __ATOMIC_RELAXED);
}

uint64_t bp_store_published(const bp_store *s) {
    /* sequentially consistent, not just acquire: a waiter's ready() loads it after counting
     * itself in pwaiters, and bp_publish stores it before reading pwaiters (notify.c) */
    return __atomic_load_n(&s->published, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------- the publish hook */

void bp_store_publish_lock(bp_store *s) {
    pthread_mutex_lock(&s->wmu);
}

void bp_store_publish_unlock(bp_store *s) {
    pthread_mutex_unlock(&s->wmu);
}

void bp_store_set_publish_hook(bp_store *s,
                               void (*fn)(void *ctx, bp_store *s, uint64_t from, uint64_t to),
                               void *ctx) {
    s->publish_fn = fn;
    s->publish_ctx = ctx;
}

bool bp_store_seq_match(bp_store *s, uint64_t seq, const bp_rfilter *f) {
    return bp_rfilter_match(f, s, seq - 1);
}

void bp_store_notice(bp_store *s, uint64_t seq, bp_notice *out) {
    const bp_index *x = &s->idx;
    uint32_t slot = (uint32_t)(seq - 1);
    const bp_irec *r = &BP_XREC(x, slot); /* (a new event: in memory) */
    *out = (bp_notice){sizeof(bp_notice),
                       seq,
                       bp_index_clock_of(x, slot),
                       r->hlc,
                       r->id,
                       r->kind,
                       x->entity_names.s[r->entity],
                       x->scope_names.s[r->scope]};
}

/* ----------------------------------------------------------------- the index */

bool bp_store_entity(bp_store *s, const char *entity, size_t len, bp_entity_view *out) {
    uint64_t n = 0;
    out->base = 0;
    pthread_rwlock_rdlock(&s->ilock);
    out->eid = bp_index_entity(&s->idx, entity, len);
    if (out->eid >= 0) {
        const bp_entity_state *es = &s->idx.entities[out->eid];
        const bp_u32vec *v = &es->slots;
        n = v->n; /* only published events count (the tier's all are) */
        while (n > 0 && v->v[n - 1] >= s->published)
            n--;
        n += es->tier;
        out->base = es->base;
    }
    pthread_rwlock_unlock(&s->ilock);
    out->clock = out->base + n;
    return out->eid >= 0;
}

typedef struct slot_fill {
    uint64_t *slots;
    uint16_t *kinds;
    size_t max, *n;
} slot_fill;

static bool fill_slot(void *ctx, uint64_t slot, uint64_t clock, uint16_t kind) {
    slot_fill *f = ctx;
    (void)clock;
    f->slots[*f->n] = slot;
    if (f->kinds) f->kinds[*f->n] = kind;
    return ++*f->n < f->max;
}

bp_status bp_store_entity_slots(bp_store *s, int64_t eid, uint64_t from, uint64_t *slots,
                                uint16_t *kinds, size_t max, size_t *n) {
    for (int attempt = 0;; attempt++) {
        *n = 0;
        pthread_rwlock_rdlock(&s->ilock);
        const bp_entity_state *es = &s->idx.entities[eid];
        const bp_u32vec *v = &es->slots;
        uint64_t base = es->base;
        bool compacted = from < base;
        /* the six tier's events first (clocks base + 1 .. base + tier), then the list's */
        slot_fill f = {slots, kinds, max, n};
        int walk = compacted || !max ? 0 : bp_tier_walk(s, eid, from + 1, fill_slot, &f, NULL);
        uint64_t lbase = base + es->tier; /* the clock before the list's first event */
        for (uint64_t c = from > lbase ? from : lbase;
             !walk && !compacted && *n < max && c - lbase < v->n; c++) {
            uint32_t slot = v->v[c - lbase];
            if (slot >= s->published) break;
            slots[*n] = slot;
            if (kinds) kinds[*n] = BP_XREC(&s->idx, slot).kind; /* (listed: in memory) */
            (*n)++;
        }
        pthread_rwlock_unlock(&s->ilock);
        if (compacted)
            return bp_err(BP_ECONFLICT, "%s: the events after clock %llu were compacted away",
                          s->dir, (unsigned long long)from);
        if (!walk) return BP_OK;
        if (attempt) /* the repair could not put the tier in memory */
            return bp_err(BP_ENOMEM,
                          "%s: a segment index file is damaged and there is no "
                          "memory to index its segment otherwise",
                          s->dir);
        bp_six_repair(s);
    }
}

bool bp_store_seq_is_hole(bp_store *s, uint64_t seq) {
    pthread_rwlock_rdlock(&s->ilock);
    bp_irec r;
    bool hole = seq >= 1 && seq <= s->anchors.upto && seq <= s->idx.n &&
                bp_store_rec(s, seq - 1, &r, 0) == 0;
    pthread_rwlock_unlock(&s->ilock);
    return hole;
}

bool bp_store_last_id(bp_store *s, bp_id *out) {
    bool found = false;
    pthread_rwlock_rdlock(&s->ilock);
    for (uint64_t q = s->published; q && !found; q--) { /* (not a compacted range's hole) */
        bp_irec r;
        if (bp_store_rec(s, q - 1, &r, 0) > 0) {
            *out = r.id;
            found = true;
        }
    }
    pthread_rwlock_unlock(&s->ilock);
    return found;
}

uint64_t bp_store_compacted_upto(bp_store *s) {
    pthread_rwlock_rdlock(&s->ilock);
    uint64_t upto = s->anchors.upto;
    pthread_rwlock_unlock(&s->ilock);
    return upto;
}
