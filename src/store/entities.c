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

/* emu held, and [i] shared or [w]. Bring the sorted array up to the index's entities: all of them
 * anew after a compaction (which renumbers them), else the new ones sorted and merged in. */
static bp_status sort_up(bp_store *s) {
    const bp_strtab *t = &s->idx.entity_names;
    if (s->sorted_graves != s->n_graves) { /* another index: from the start */
        s->n_sorted = 0;
        s->sorted_graves = s->n_graves;
    }
    /* (a reader may intern a cold entity meanwhile: the ones up to n are whole) */
    uint32_t old = s->n_sorted, n = __atomic_load_n(&t->n, __ATOMIC_ACQUIRE);
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

bp_status bp_entities_walk(bp_store *s, const char *from, size_t flen, bool after, bp_entity_fn fn,
                           void *ctx) {
    bp_status rc = sort_up(s);
    if (rc) return rc;
    const bp_strtab *t = &s->idx.entity_names;
    const bp_index_cold *c = s->idx.cold;
    /* the first of each list at or past from (past it when after) */
    uint32_t lo = 0, hi = s->n_sorted;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int k = name_cmp(t, s->sorted[mid], from, flen);
        if (k < 0 || (after && k == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t a = lo, b = 0, nb = c ? c->d.m.n_entities : 0;
    if (c && bp_entdir_find(&c->d, c->offs, from, flen, &b) >= 0 && after) b++;
    while (a < s->n_sorted || b < nb) {
        const char *cn = NULL;
        uint8_t cl = 0;
        uint64_t clock = 0;
        if (b < nb) bp_index_cold_entry(c, b, &cn, &cl, &clock, NULL);
        int k = a == s->n_sorted ? 1 : b == nb ? -1 : name_cmp(t, s->sorted[a], cn, cl);
        bool go;
        if (k <= 0) { /* the table's (and the file's entry of the same name, shadowed) */
            go = fn(ctx, s->sorted[a], -1);
            a++;
            b += k == 0;
        } else { /* the file's: its state unless the table has it in another place (not yet
                    sorted: interned since, by a reader, with the file's state) */
            go = fn(ctx, -1, b);
            b++;
        }
        if (!go) break;
    }
    return BP_OK;
}

typedef struct list_ctx {
    bp_store *s;
    const char *prefix;
    size_t plen, max, stride, *n;
    bp_entity_info *out;
} list_ctx;

static bool list_one(void *arg, int64_t id, int64_t cold) {
    list_ctx *l = arg;
    bp_store *s = l->s;
    const bp_index *x = &s->idx;
    const char *name;
    size_t len;
    uint64_t events, clock;
    if (id >= 0) {
        name = x->entity_names.s[id];
        len = x->entity_names.len[id];
        const bp_entity_state *es = &x->entities[id];
        uint64_t listed = es->slots.n; /* only published events count (the tier's all are) */
        while (listed && es->slots.v[listed - 1] >= s->published)
            listed--;
        events = es->tier + listed;
        clock = es->base + events;
        if (!events && !es->base) return true; /* nothing published yet */
    } else {
        uint8_t cl;
        bp_index_cold_entry(x->cold, (uint32_t)cold, &name, &cl, &clock, NULL);
        len = cl;
        events = clock; /* (an entity with an anchor is never the file's alone) */
    }
    if (l->plen && (len < l->plen || memcmp(name, l->prefix, l->plen) != 0)) return false;
    bp_entity_info *o = (bp_entity_info *)((char *)l->out + *l->n * l->stride);
    *o = (bp_entity_info)BP_ENTITY_INFO_INIT;
    memcpy(o->name, name, len);
    o->name[len] = '\0';
    o->events = events;
    o->clock = clock;
    return ++*l->n < l->max;
}

bp_status bp_entities_list(bp_store *s, const char *prefix, const char *after, bp_entity_info *out,
                           size_t max, size_t *n) {
    if (!s || !n || (max && !out)) return bp_err(BP_EINVAL, "bp_entities_list: NULL argument");
    *n = 0;
    if (max) BP_SIZE_CHECK("bp_entities_list", out, bp_entity_info, BP_ENTITY_INFO_INIT);
    if (!max) return BP_OK;
    list_ctx l = {s, prefix, prefix ? strlen(prefix) : 0, max, out[0].struct_size, n, out};
    /* from the prefix, or past after when that comes later */
    const char *from = prefix ? prefix : "";
    size_t flen = l.plen;
    bool past = false;
    if (after && bp_six_name_cmp(after, strlen(after), from, flen) >= 0) {
        from = after;
        flen = strlen(after);
        past = true;
    }
    pthread_mutex_lock(&s->emu);
    pthread_rwlock_rdlock(&s->ilock);
    bp_status rc = bp_entities_walk(s, from, flen, past, list_one, &l);
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->emu);
    return rc;
}
