/* The cold entity directory of the index (index.h bp_index_cold): the entities of an entity
 * checkpoint, searched in place in its mapped bytes and interned one by one as they are first
 * looked up, so that an open costs the same whatever the number of entities. */
#include "store/index.h"

#include <errno.h>
#include <stdlib.h>

void bp_index_cold_entry(const bp_index_cold *c, uint32_t i, const char **name, uint8_t *len,
                         uint64_t *clock, bp_hash *head) {
    size_t pos = c->offs[i];
    bp_hash h;
    bp_entdir_entity(&c->d, &pos, name, len, clock, head ? head : &h);
}

static void cold_free(bp_index_cold *c) {
    pthread_mutex_destroy(&c->mu);
    free(c->offs);
    free(c);
}

int bp_index_cold_set(bp_index *x, const bp_entdir *d, uint64_t *events) {
    uint32_t n = d->m.n_entities;
    bp_index_cold *c = calloc(1, sizeof *c);
    uint32_t *offs = malloc(((size_t)n + 1) * sizeof *offs);
    if (!c || !offs || pthread_mutex_init(&c->mu, NULL)) {
        free(c);
        free(offs);
        return -ENOMEM;
    }
    c->d = *d;
    c->offs = offs;
    bp_entdir_offsets(d, offs);
    /* room for all of them: interning one never grows anything (index.h) */
    if (bp_index_reserve(x, n, d->name_bytes)) {
        cold_free(c);
        return -ENOMEM;
    }
    uint64_t sum = d->clock_sum;
    /* the anchored entities (all the table holds) it lists: their state is the file's now */
    uint32_t shadowed = 0;
    const bp_strtab *t = &x->entity_names;
    for (uint32_t e = 0; e < t->n; e++) {
        int64_t i = bp_entdir_find(d, offs, t->s[e], t->len[e], NULL);
        if (i < 0) continue;
        const char *name;
        uint8_t len;
        uint64_t clock;
        bp_hash head;
        bp_index_cold_entry(c, (uint32_t)i, &name, &len, &clock, &head);
        bp_entity_state *es = &x->entities[e];
        if (clock <= es->base || es->tier || es->slots.n) {
            cold_free(c);
            return -EINVAL;
        }
        es->tier = clock - es->base;
        es->head = head;
        sum -= es->base;
        shadowed++;
    }
    c->left = n - shadowed;
    x->cold = c;
    *events = sum;
    return 0;
}

void bp_index_cold_verify(bp_index *x, bp_cold_verify_fn verify, void *ctx) {
    if (!x->cold) return;
    x->cold->verify = verify;
    x->cold->verify_ctx = ctx;
}

/* Intern entry i (not in the table: checked under mu), or return the id another thread gave
 * it meanwhile; its state verified (when check and the directory can). */
static int64_t intern(bp_index *x, uint32_t i, bool check) {
    bp_index_cold *c = x->cold;
    const char *name;
    uint8_t len;
    uint64_t clock;
    bp_hash head;
    bp_index_cold_entry(c, i, &name, &len, &clock, &head);
    int64_t e = bp_strtab_find(&x->entity_names, name, len);
    if (e >= 0) return e;
    uint64_t vc = 0;
    bp_hash vh;
    memset(&vh, 0, sizeof vh);
    int v = check && c->verify ? c->verify(c->verify_ctx, name, len, &vc, &vh) : 0;
    if (v && (vc != clock || memcmp(vh.b, head.b, sizeof vh.b) != 0)) {
        clock = vc; /* the events' word, not the file's (0: it has none) */
        head = vh;
        __atomic_fetch_add(&c->lies, 1, __ATOMIC_RELAXED);
    }
    uint32_t id = x->entity_names.n;           /* the id the add gives: its state first (index.h) */
    if (id >= x->entities_cap) return -ENOMEM; /* (not when the room invariant holds) */
    bp_entity_state *es = &x->entities[id];
    memset(es, 0, sizeof *es);
    es->tier = clock;
    es->head = head;
    e = bp_strtab_add(&x->entity_names, name, len);
    if (e >= 0) __atomic_fetch_sub(&c->left, 1, __ATOMIC_RELEASE);
    return e;
}

int64_t bp_index_entity(bp_index *x, const char *name, size_t len) {
    return bp_index_entity_ex(x, name, len, true);
}

int64_t bp_index_entity_ex(bp_index *x, const char *name, size_t len, bool check) {
    int64_t e = bp_strtab_find(&x->entity_names, name, len);
    bp_index_cold *c = x->cold;
    if (e >= 0 || !c || !__atomic_load_n(&c->left, __ATOMIC_ACQUIRE)) return e;
    int64_t i = bp_entdir_find(&c->d, c->offs, name, len, NULL);
    if (i < 0) return -1;
    pthread_mutex_lock(&c->mu);
    e = intern(x, (uint32_t)i, check);
    pthread_mutex_unlock(&c->mu);
    return e;
}

int64_t bp_index_entity_next(bp_index *x, const char *name, size_t len, uint64_t clock,
                             const bp_hash *prev) {
    int64_t e = bp_strtab_find(&x->entity_names, name, len);
    bp_index_cold *c = x->cold;
    if (e >= 0 || !c || !__atomic_load_n(&c->left, __ATOMIC_ACQUIRE)) return e;
    int64_t i = bp_entdir_find(&c->d, c->offs, name, len, NULL);
    if (i < 0) return -1;
    const char *n;
    uint8_t l;
    uint64_t ck;
    bp_hash h;
    bp_index_cold_entry(c, (uint32_t)i, &n, &l, &ck, &h);
    /* the event's link proves the file's state: no need to read the entity's last event */
    bool proven = ck + 1 == clock && memcmp(h.b, prev->b, sizeof h.b) == 0;
    pthread_mutex_lock(&c->mu);
    e = intern(x, (uint32_t)i, !proven);
    pthread_mutex_unlock(&c->mu);
    return e;
}

int bp_index_cold_all(bp_index *x) {
    bp_index_cold *c = x->cold;
    if (!c) return 0;
    for (uint32_t i = 0; i < c->d.m.n_entities; i++)
        if (intern(x, i, false) < 0) return -ENOMEM;
    bp_index_cold_drop(x);
    return 0;
}

void bp_index_cold_drop(bp_index *x) {
    bp_index_cold *c = x->cold;
    if (!c) return;
    x->cold = NULL;
    cold_free(c);
}

uint64_t bp_index_entity_count(const bp_index *x) {
    const bp_index_cold *c = x->cold;
    return __atomic_load_n(&x->entity_names.n, __ATOMIC_ACQUIRE) +
           (c ? __atomic_load_n(&c->left, __ATOMIC_ACQUIRE) : 0);
}
