/* Entities listed by name (read.h bp_entities_list): the index keeps entities in a hash table,
 * so their order is a sorted array of entity ids beside it, made at the first listing and
 * merged with the entities that came since at each later one. No event is read. */
#include "store/store_impl.h"

#include <stdlib.h>

/* qsort has no context argument in C11: the names being sorted, per thread. */
static _Thread_local const bp_strtab *sort_tab;

static int by_name(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return bp_six_name_cmp(sort_tab->s[x], sort_tab->len[x], sort_tab->s[y], sort_tab->len[y]);
}

static int name_cmp(const bp_strtab *t, uint32_t id, const char *name, size_t len) {
    return bp_six_name_cmp(t->s[id], t->len[id], name, len);
}

/* [i] shared and emu held. Bring the sorted array up to the index's entities: all of them
 * anew after a compaction (which renumbers them), else the new ones sorted and merged in. */
static bp_status sort_up(bp_store *s) {
    const bp_strtab *t = &s->idx.entity_names;
    if (s->sorted_graves != s->n_graves) { /* another index: from the start */
        s->n_sorted = 0;
        s->sorted_graves = s->n_graves;
    }
    uint32_t old = s->n_sorted, n = t->n;
    if (old == n) return BP_OK;
    uint32_t *v = realloc(s->sorted, (size_t)n * 2 * sizeof *v); /* the array, then room */
    if (!v) return bp_err(BP_ENOMEM, "bp_entities_list: out of memory");
    s->sorted = v;
    uint32_t *fresh = v + n; /* the new ids, sorted, then merged from the back */
    for (uint32_t i = old; i < n; i++)
        fresh[i - old] = i;
    sort_tab = t;
    qsort(fresh, n - old, sizeof *fresh, by_name);
    uint32_t a = old, b = n - old, k = n;
    while (b) {
        if (a && by_name(&v[a - 1], &fresh[b - 1]) > 0)
            v[--k] = v[--a];
        else
            v[--k] = fresh[--b];
    }
    s->n_sorted = n;
    return BP_OK;
}

bp_status bp_entities_list(bp_store *s, const char *prefix, const char *after, bp_entity_info *out,
                           size_t max, size_t *n) {
    if (!s || !n || (max && !out)) return bp_err(BP_EINVAL, "bp_entities_list: NULL argument");
    *n = 0;
    if (max) BP_SIZE_CHECK("bp_entities_list", out, bp_entity_info, BP_ENTITY_INFO_INIT);
    size_t stride = max ? out[0].struct_size : 0;
    size_t plen = prefix ? strlen(prefix) : 0, alen = after ? strlen(after) : 0;
    pthread_mutex_lock(&s->emu);
    pthread_rwlock_rdlock(&s->ilock);
    bp_status rc = sort_up(s);
    const bp_index *x = &s->idx;
    const bp_strtab *t = &x->entity_names;
    /* the first name at or past the prefix and past after */
    uint32_t lo = 0, hi = s->n_sorted;
    while (!rc && lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, id = s->sorted[mid];
        bool before = name_cmp(t, id, prefix ? prefix : "", plen) < 0 ||
                      (after && name_cmp(t, id, after, alen) <= 0);
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t k = lo; !rc && k < s->n_sorted && *n < max; k++) {
        uint32_t id = s->sorted[k];
        if (plen && (t->len[id] < plen || memcmp(t->s[id], prefix, plen) != 0)) break;
        const bp_entity_state *es = &x->entities[id];
        uint64_t listed = es->slots.n; /* only published events count (the tier's all are) */
        while (listed && es->slots.v[listed - 1] >= s->published)
            listed--;
        uint64_t events = es->tier + listed;
        if (!events && !es->base) continue; /* nothing published yet */
        bp_entity_info *o = (bp_entity_info *)((char *)out + *n * stride);
        *o = (bp_entity_info)BP_ENTITY_INFO_INIT;
        memcpy(o->name, t->s[id], (size_t)t->len[id] + 1);
        o->events = events;
        o->clock = es->base + events;
        (*n)++;
    }
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->emu);
    return rc;
}
