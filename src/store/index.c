/* The in-memory index (see index.h for invariants). */
#include "store/index.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return 0;
    uint32_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int vec_push(bp_u32vec *v, uint32_t x) {
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof(uint32_t))) return -ENOMEM;
    v->v[v->n++] = x;
    return 0;
}

/* ------------------------------------------------------------ strtab */

int64_t bp_strtab_find(const bp_strtab *t, const char *s, size_t len) {
    if (!t->hcap) return -1;
    uint32_t mask = t->hcap - 1;
    for (uint32_t i = (uint32_t)bp_str_hash(s, len) & mask;; i = (i + 1) & mask) {
        uint32_t v = __atomic_load_n(&t->hidx[i], __ATOMIC_ACQUIRE); /* (bp_index_entity) */
        if (!v) return -1;
        if (t->len[v - 1] == len && memcmp(t->s[v - 1], s, len) == 0) return v - 1;
    }
}

static void strtab_place(bp_strtab *t, uint32_t id) {
    uint32_t mask = t->hcap - 1;
    uint32_t i = (uint32_t)bp_str_hash(t->s[id], t->len[id]) & mask;
    while (t->hidx[i])
        i = (i + 1) & mask;
    __atomic_store_n(&t->hidx[i], id + 1, __ATOMIC_RELEASE); /* its string is in place */
}

/* Room for n strings in the arrays and the hash table (load <= 1/2). */
static int strtab_room(bp_strtab *t, uint32_t n) {
    if ((uint64_t)n * 2 > t->hcap) {
        uint32_t nc = t->hcap ? t->hcap * 2 : 64;
        while ((uint64_t)n * 2 > nc)
            nc *= 2;
        uint32_t *h = calloc(nc, sizeof *h);
        if (!h) return -ENOMEM;
        free(t->hidx);
        t->hidx = h;
        t->hcap = nc;
        for (uint32_t i = 0; i < t->n; i++)
            strtab_place(t, i);
    }
    uint32_t c1 = t->cap, c2 = t->cap;
    if (grow((void **)&t->s, &c1, n, sizeof(char *)) ||
        grow((void **)&t->len, &c2, n, sizeof(uint16_t)))
        return -ENOMEM;
    t->cap = c1 < c2 ? c1 : c2;
    return 0;
}

int bp_strtab_reserve(bp_strtab *t, uint32_t n, size_t bytes) {
    if (strtab_room(t, t->n + n)) return -ENOMEM;
    if (t->arena || !bytes) return 0;
    t->arena = malloc(bytes);
    if (!t->arena) return -ENOMEM;
    t->arena_cap = bytes;
    t->arena_used = 0;
    t->arena_lo = t->arena_hi = t->n;
    return 0;
}

int64_t bp_strtab_add(bp_strtab *t, const char *s, size_t len) {
    if (strtab_room(t, t->n + 1)) return -ENOMEM;
    /* the reserved block while the adds follow each other into it */
    bool arena = t->arena && t->arena_hi == t->n && t->arena_cap - t->arena_used >= len + 1;
    char *copy = arena ? t->arena + t->arena_used : malloc(len + 1);
    if (!copy) return -ENOMEM;
    if (arena) {
        t->arena_used += len + 1;
        t->arena_hi++;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    t->s[t->n] = copy;
    t->len[t->n] = (uint16_t)len;
    uint32_t id = t->n;
    strtab_place(t, id);
    __atomic_store_n(&t->n, id + 1, __ATOMIC_RELEASE);
    return id;
}

void bp_strtab_free(bp_strtab *t) {
    for (uint32_t i = 0; i < t->n; i++)
        if (i < t->arena_lo || i >= t->arena_hi) free(t->s[i]);
    free(t->arena);
    free(t->s);
    free(t->len);
    free(t->hidx);
    memset(t, 0, sizeof *t);
}

static uint64_t strtab_bytes(const bp_strtab *t) {
    uint64_t b = (uint64_t)t->cap * (sizeof(char *) + 2) + (uint64_t)t->hcap * 4 + t->arena_cap;
    for (uint32_t i = 0; i < t->n; i++)
        if (i < t->arena_lo || i >= t->arena_hi) b += t->len[i] + 1u + 16u; /* + malloc's */
    return b;
}

/* ------------------------------------------------------------- index */

int bp_index_init(bp_index *x) {
    memset(x, 0, sizeof *x);
    x->kind_ids = calloc(65536, sizeof(uint16_t));
    return x->kind_ids ? 0 : -ENOMEM;
}

void bp_index_free_keep_names(bp_index *x, bp_strtab *entities, bp_strtab *scopes) {
    bp_index_cold_drop(x);
    for (uint32_t i = 0; i < x->entity_names.n; i++)
        free(x->entities[i].slots.v);
    free(x->entities);
    for (uint32_t i = 0; i < x->scope_names.n; i++)
        free(x->scopes[i].v);
    free(x->scopes);
    x->entities = NULL;
    x->scopes = NULL;
    *entities = x->entity_names;
    *scopes = x->scope_names;
    memset(&x->entity_names, 0, sizeof x->entity_names);
    memset(&x->scope_names, 0, sizeof x->scope_names);
    bp_index_free(x);
}

void bp_index_free(bp_index *x) {
    if (!x) return;
    bp_index_cold_drop(x);
    free(x->recs);
    for (uint32_t i = 0; i < x->entity_names.n; i++)
        free(x->entities[i].slots.v);
    free(x->entities);
    bp_strtab_free(&x->entity_names);
    for (uint32_t i = 0; i < x->scope_names.n; i++)
        free(x->scopes[i].v);
    free(x->scopes);
    bp_strtab_free(&x->scope_names);
    for (uint32_t i = 0; i < x->n_kinds; i++)
        free(x->kinds[i].v);
    free(x->kinds);
    free(x->kind_ids);
    free(x->idtab);
    free(x->noid);
    bp_strtab_free(&x->idem_keys);
    free(x->idem_slots);
    memset(x, 0, sizeof *x);
}

/* Every bit of the id matters: within one millisecond UUIDv7 ids differ only
 * in their last bytes (the counter), so both halves are mixed (murmur3 fmix64). */
static uint64_t id_hash(const bp_id *id) {
    uint64_t a, b;
    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

int64_t bp_index_find_id(const bp_index *x, const bp_id *id) {
    if (!x->idcap) return -1;
    uint64_t mask = x->idcap - 1;
    for (uint64_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = x->idtab[i];
        if (!v) return -1;
        if (memcmp(BP_XREC(x, v - 1).id.b, id->b, 16) == 0) return v - 1;
    }
}

void bp_index_prefetch_id(const bp_index *x, const bp_id *id) {
    if (x->idcap) __builtin_prefetch(&x->idtab[id_hash(id) & (x->idcap - 1)], 1);
}

void bp_index_idtab_stats(const bp_index *x, uint64_t *entries, uint64_t *probes) {
    *entries = *probes = 0;
    uint64_t mask = x->idcap - 1;
    for (uint64_t i = 0; i < x->idcap; i++) {
        uint32_t v = x->idtab[i];
        if (!v) continue;
        uint64_t home = id_hash(&BP_XREC(x, v - 1).id) & mask;
        *entries += 1;
        *probes += ((i - home) & mask) + 1;
    }
}

void bp_index_idtab_place(uint32_t *tab, uint64_t cap, const bp_id *id, uint32_t slot) {
    uint64_t mask = cap - 1;
    uint64_t i = id_hash(id) & mask;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = slot + 1;
}

/* Room for n events in the id table. n counts events, not seqs: holes (all with the zero id)
 * are never placed, or they would pile into one probe cluster and make every rehash, and so
 * open after a compaction, quadratic in the holes. */
static int idtab_reserve(bp_index *x, uint64_t n) {
    if (n * 2 <= x->idcap) return 0;
    uint64_t nc = x->idcap ? x->idcap : 1024;
    while (n * 2 > nc)
        nc *= 2;
    uint32_t *t = calloc(nc, sizeof *t);
    if (!t) return -ENOMEM;
    if (x->holes <= x->n / 2) {
        /* from the records, in order: reads them once, sequentially (the old table's order
         * reads each one at random, a cache miss per event) */
        const uint64_t mask = nc - 1;
        uint32_t r = 0; /* the next noid range */
        for (uint64_t i = 0; i < x->n; i++) {
            if (r < x->n_noid && i == x->noid[2 * r]) { /* its ids are not placed */
                i = x->noid[2 * r + 1] - 1;
                r++;
                continue;
            }
            /* the table is larger than the caches: fetch the slot 16 records ahead */
            if (i + 16 < x->n) __builtin_prefetch(&t[id_hash(&BP_XREC(x, i + 16).id) & mask], 1);
            if (!BP_IREC_HOLE(&BP_XREC(x, i)))
                bp_index_idtab_place(t, nc, &BP_XREC(x, i).id, (uint32_t)i);
        }
    } else { /* mostly holes: from the old table, no walk over the holes */
        for (uint64_t i = 0; i < x->idcap; i++)
            if (x->idtab[i])
                bp_index_idtab_place(t, nc, &BP_XREC(x, x->idtab[i] - 1).id, x->idtab[i] - 1);
    }
    free(x->idtab);
    x->idtab = t;
    x->idcap = nc;
    return 0;
}

int64_t bp_index_find_idem(const bp_index *x, const char *key, size_t len) {
    int64_t k = bp_strtab_find(&x->idem_keys, key, len);
    return k < 0 ? -1 : (int64_t)x->idem_slots[k];
}

uint64_t bp_index_clock_of(const bp_index *x, uint32_t slot) {
    const bp_entity_state *es = &x->entities[BP_XREC(x, slot).entity];
    uint32_t lo = bp_u32vec_lower_bound(&es->slots, slot);
    assert(lo < es->slots.n && es->slots.v[lo] == slot); /* listed: not a tier slot */
    return es->base + es->tier + lo + 1;
}

int bp_index_holes(bp_index *x, uint64_t upto, uint32_t segno) {
    if (upto <= x->n) return 0;
    uint64_t old_n = x->n;
    if (upto >= UINT32_MAX - 1) return -EOVERFLOW;
    if (upto - x->rbase > x->cap) {
        bp_irec *r = realloc(x->recs, (upto - x->rbase) * sizeof *r);
        if (!r) return -ENOMEM;
        x->recs = r;
        x->cap = upto - x->rbase;
    }
    memset(&BP_XREC(x, x->n), 0, (size_t)(upto - x->n) * sizeof *x->recs); /* frame_len 0 */
    for (uint64_t i = x->n; i < upto; i++)
        BP_XREC(x, i).segno = segno;
    x->holes += upto - x->n;
    x->n = upto;
    if (x->list_base == old_n) x->list_base = x->n; /* holes are in no list */
    return 0;
}

static int64_t intern_entity(bp_index *x, const char *s, size_t len) {
    /* (an entity checkpoint's, interned now: recovery's loads are not checked one by one) */
    int64_t e = bp_index_entity_ex(x, s, len, false);
    if (e >= 0) return e;
    if (e < -1) return e;
    /* a new entity: room for it and for every checkpoint entity still to be interned, which
     * readers may intern without growing anything (index_cold.c) */
    uint32_t left = x->cold ? x->cold->left : 0;
    if (grow((void **)&x->entities, &x->entities_cap, x->entity_names.n + 1 + left,
             sizeof(bp_entity_state)) ||
        (left && bp_strtab_reserve(&x->entity_names, 1 + left, 0)))
        return -ENOMEM;
    e = bp_strtab_add(&x->entity_names, s, len);
    if (e >= 0) memset(&x->entities[e], 0, sizeof x->entities[e]);
    return e;
}

static int64_t intern_scope(bp_index *x, const char *s, size_t len) {
    int64_t e = bp_strtab_find(&x->scope_names, s, len);
    if (e >= 0) return e;
    if (grow((void **)&x->scopes, &x->scopes_cap, x->scope_names.n + 1, sizeof(bp_u32vec)))
        return -ENOMEM;
    e = bp_strtab_add(&x->scope_names, s, len);
    if (e >= 0) memset(&x->scopes[e], 0, sizeof x->scopes[e]);
    return e;
}

int bp_index_reserve(bp_index *x, uint32_t n, size_t name_bytes) {
    if (grow((void **)&x->entities, &x->entities_cap, x->entity_names.n + n,
             sizeof(bp_entity_state)) ||
        bp_strtab_reserve(&x->entity_names, n, name_bytes))
        return -ENOMEM;
    return 0;
}

int64_t bp_index_intern(bp_index *x, const char *name, size_t len, bool scope) {
    return scope ? intern_scope(x, name, len) : intern_entity(x, name, len);
}

int bp_index_anchor(bp_index *x, const char *name, size_t len, uint64_t clock,
                    const bp_hash *hash) {
    int64_t e = intern_entity(x, name, len);
    if (e < 0) return -ENOMEM;
    bp_entity_state *es = &x->entities[e];
    if (es->slots.n || es->tier || es->base) return -EINVAL;
    es->base = clock;
    es->head = *hash;
    return 0;
}

bp_u32vec *bp_index_kind_vec(bp_index *x, uint16_t kind) {
    if (!x->kind_ids[kind]) {
        uint32_t cap = x->n_kinds; /* kinds grows one at a time */
        bp_u32vec *k = realloc(x->kinds, ((size_t)cap + 1) * sizeof *k);
        if (!k) return NULL;
        x->kinds = k;
        memset(&x->kinds[x->n_kinds], 0, sizeof *k);
        x->kind_ids[kind] = ++x->n_kinds;
    }
    return &x->kinds[x->kind_ids[kind] - 1];
}

int bp_index_insert(bp_index *x, const bp_irec *rin, const char *entity, size_t elen,
                    const char *scope, size_t slen, const bp_hash *hash, const char *idem,
                    size_t ilen) {
    if (x->n >= UINT32_MAX - 1) return -EOVERFLOW;
    /* reserve everything first so that a failure leaves the index unchanged */
    if (x->n - x->rbase == x->cap) {
        uint64_t nc = x->cap ? x->cap * 2 : 1024;
        bp_irec *r = realloc(x->recs, nc * sizeof *r);
        if (!r) return -ENOMEM;
        x->recs = r;
        x->cap = nc;
    }
    if (idtab_reserve(x, x->n - x->holes - x->noids + 1)) return -ENOMEM;
    int64_t e = intern_entity(x, entity, elen);
    int64_t s = intern_scope(x, scope, slen);
    bp_u32vec *kv = bp_index_kind_vec(x, rin->kind);
    if (e < 0 || s < 0 || !kv) return -ENOMEM;
    bp_entity_state *es = &x->entities[e];
    if (grow((void **)&es->slots.v, &es->slots.cap, es->slots.n + 1, 4) ||
        grow((void **)&x->scopes[s].v, &x->scopes[s].cap, x->scopes[s].n + 1, 4) ||
        grow((void **)&kv->v, &kv->cap, kv->n + 1, 4))
        return -ENOMEM;
    if (idem && ilen) {
        if (grow((void **)&x->idem_slots, &x->idem_cap, x->idem_keys.n + 1, 4)) return -ENOMEM;
        int64_t k = bp_strtab_add(&x->idem_keys, idem, ilen);
        if (k < 0) return -ENOMEM;
        x->idem_slots[k] = (uint32_t)x->n;
    }
    uint32_t slot = (uint32_t)x->n;
    bp_irec *r = &BP_XREC(x, slot);
    *r = *rin;
    r->entity = (uint32_t)e;
    r->scope = (uint32_t)s;
    vec_push(&es->slots, slot);
    vec_push(&x->scopes[s], slot);
    vec_push(kv, slot);
    es->head = *hash;
    bp_index_idtab_place(x->idtab, x->idcap, &r->id, slot);
    x->n++;
    return 0;
}

/* The entities in entity_names: a reader may intern a cold one meanwhile (index.h
 * bp_index_cold); the ones below the count read are whole. */
static uint32_t entity_count(const bp_index *x) {
    return __atomic_load_n(&x->entity_names.n, __ATOMIC_ACQUIRE);
}

uint64_t bp_index_bytes(const bp_index *x) {
    if (x->cold) pthread_mutex_lock(&x->cold->mu); /* (no entity interned meanwhile) */
    uint64_t b = x->cap * sizeof(bp_irec) + x->idcap * 4 + 65536 * 2;
    b += strtab_bytes(&x->entity_names) + (uint64_t)x->entities_cap * sizeof(bp_entity_state);
    for (uint32_t i = 0, n = entity_count(x); i < n; i++)
        b += (uint64_t)x->entities[i].slots.cap * 4;
    b += strtab_bytes(&x->scope_names) + (uint64_t)x->scopes_cap * sizeof(bp_u32vec);
    for (uint32_t i = 0; i < x->scope_names.n; i++)
        b += (uint64_t)x->scopes[i].cap * 4;
    for (uint32_t i = 0; i < x->n_kinds; i++)
        b += (uint64_t)x->kinds[i].cap * 4;
    b += strtab_bytes(&x->idem_keys) + (uint64_t)x->idem_cap * 4;
    if (x->cold) pthread_mutex_unlock(&x->cold->mu);
    return b;
}

/* ------------------------------------------------------------- export */

static int export_block(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out, bool view,
                        bool heads) {
    memset(out, 0, sizeof *out);
    assert(from <= to && to <= x->n && (!heads || to == x->n)); /* heads: of the newest only */
    if (from < x->rbase) return -EINVAL; /* the six tier's records are in its files */
    uint32_t ne = entity_count(x), ns = x->scope_names.n;
    uint32_t *emap = malloc(((size_t)ne + 1) * 4), *smap = malloc(((size_t)ns + 1) * 4);
    bool holes = false;
    for (uint64_t s = from; s < to && !holes; s++)
        holes = BP_IREC_HOLE(&BP_XREC(x, s));
    bool lend = view && !holes;
    if (!lend) out->recs = malloc((size_t)(to - from + 1) * sizeof(bp_irec));
    out->entities = malloc(((size_t)ne + 1) * sizeof(bp_iname));
    out->entity_heads = malloc(((size_t)ne + 1) * sizeof(bp_hash));
    out->scopes = malloc(((size_t)ns + 1) * sizeof(bp_iname));
    out->idems = malloc(((size_t)x->idem_keys.n + 1) * sizeof(bp_iidem));
    if (holes) out->seqs = malloc((size_t)(to - from + 1) * sizeof *out->seqs);
    uint32_t *recno = holes ? malloc((size_t)(to - from + 1) * 4) : NULL; /* slot -> record */
    int rc = 0;
    if (!emap || !smap || (!lend && !out->recs) || !out->entities || !out->entity_heads ||
        !out->scopes || !out->idems || (holes && (!out->seqs || !recno))) {
        rc = -ENOMEM;
        goto done;
    }
    memset(emap, 0xFF, ((size_t)ne + 1) * 4);
    memset(smap, 0xFF, ((size_t)ns + 1) * 4);
    out->first_seq = from + 1;
    for (uint64_t s = from; s < to; s++) {
        bp_irec r = BP_XREC(x, s);
        if (BP_IREC_HOLE(&r)) continue;
        if (holes) {
            if (!out->n_recs) out->first_seq = s + 1;
            recno[s - from] = out->n_recs;
            out->seqs[out->n_recs] = s + 1;
        }
        if (emap[r.entity] == UINT32_MAX) {
            uint32_t k = out->n_entities++;
            emap[r.entity] = k;
            out->entities[k].name = x->entity_names.s[r.entity];
            out->entities[k].len = x->entity_names.len[r.entity];
            if (heads)
                out->entity_heads[k] = x->entities[r.entity].head;
            else
                memset(&out->entity_heads[k], 0, sizeof out->entity_heads[k]);
        }
        if (smap[r.scope] == UINT32_MAX) {
            uint32_t k = out->n_scopes++;
            smap[r.scope] = k;
            out->scopes[k].name = x->scope_names.s[r.scope];
            out->scopes[k].len = x->scope_names.len[r.scope];
        }
        if (lend) { /* the encoder renumbers them */
            out->n_recs++;
            continue;
        }
        r.entity = emap[r.entity];
        r.scope = smap[r.scope];
        out->recs[out->n_recs++] = r;
    }
    if (lend) {
        /* read only: the block is only encoded (an empty index has no array to point into) */
        out->recs = x->recs ? (bp_irec *)&BP_XREC(x, from) : NULL;
        out->emap = emap;
        out->smap = smap;
        emap = smap = NULL; /* the block's now */
    }
    for (uint32_t k = 0; k < x->idem_keys.n; k++) {
        uint32_t slot = x->idem_slots[k];
        if (slot < from || slot >= to) continue;
        bp_iidem *d = &out->idems[out->n_idems++];
        d->rec = holes ? recno[slot - from] : (uint32_t)(slot - from);
        d->key = x->idem_keys.s[k];
        d->len = x->idem_keys.len[k];
    }
    if (holes && !out->n_recs) { /* only holes: an empty dense block */
        free(out->seqs);
        out->seqs = NULL;
    }
done:
    free(emap);
    free(smap);
    free(recno);
    if (rc) bp_index_block_release(out);
    return rc;
}

int bp_index_export(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out) {
    return export_block(x, from, to, out, false, true);
}

int bp_index_export_view(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out) {
    return export_block(x, from, to, out, true, true);
}

int bp_index_export_six(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out,
                        uint64_t **first_clock) {
    *first_clock = NULL;
    int rc = export_block(x, from, to, out, true, false);
    if (rc) return rc;
    /* the block numbers entities in the order of their first record: so do the clocks */
    uint64_t *fc = malloc(((size_t)out->n_entities + 1) * sizeof *fc);
    uint8_t *seen = calloc((size_t)entity_count(x) + 1, 1);
    if (!fc || !seen) {
        free(fc);
        free(seen);
        bp_index_block_release(out);
        return -ENOMEM;
    }
    uint32_t k = 0;
    for (uint64_t slot = from; slot < to && k < out->n_entities; slot++) {
        const bp_irec *r = &BP_XREC(x, slot);
        if (BP_IREC_HOLE(r) || seen[r->entity]) continue;
        seen[r->entity] = 1;
        fc[k++] = bp_index_clock_of(x, (uint32_t)slot);
    }
    free(seen);
    *first_clock = fc;
    return 0;
}

void bp_index_block_release(bp_iblock *blk) {
    free(blk->seqs);
    if (!blk->emap) free(blk->recs); /* else the index's, lent */
    free(blk->emap);
    free(blk->smap);
    free(blk->entities);
    free(blk->entity_heads);
    free(blk->scopes);
    free(blk->idems);
    memset(blk, 0, sizeof *blk);
}

/* ------------------------------------------------------------- bulk load */

/* 0 if the n ids in map (each < universe) are distinct, -EINVAL if one repeats, -ENOMEM. */
int bp_index_distinct(const uint32_t *map, uint32_t n, uint32_t universe) {
    uint8_t *seen = calloc(universe ? universe : 1, 1);
    if (!seen) return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        if (seen[map[i]]) rc = -EINVAL;
        seen[map[i]] = 1;
    }
    free(seen);
    return rc;
}

/* Rewrite a block with seqs as a dense one starting at x->n + 1, with holes (frame_len 0)
 * for the seqs it lacks; idempotency keys follow their records. Each hole takes the segno of
 * the record after it (recs[].segno stays ascending). The dense records are written once,
 * where they end up: in a new array an empty index takes over, else in x->recs past x->n
 * (grown here): then blk->recs points there and *in_place is set (not the block's to free). */
static int densify(bp_index *x, bp_iblock *blk, bool *in_place) {
    *in_place = false;
    uint64_t last = blk->seqs[blk->n_recs - 1];
    if (blk->seqs[0] <= x->n) return -EINVAL;
    if (last >= UINT32_MAX - 1) return -EOVERFLOW;
    uint32_t n = (uint32_t)(last - x->n);
    bp_irec *recs;
    uint64_t have = x->n - x->rbase; /* records in x->recs */
    if (have == 0) {
        recs = malloc((size_t)n * sizeof *recs);
        if (!recs) return -ENOMEM;
    } else {
        if (have + n > x->cap) {
            uint64_t nc = have + n + 1024;
            bp_irec *r = realloc(x->recs, nc * sizeof *r);
            if (!r) return -ENOMEM;
            x->recs = r;
            x->cap = nc;
        }
        recs = x->recs + have;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < blk->n_recs; i++) {
        uint32_t at = (uint32_t)(blk->seqs[i] - x->n - 1);
        if (at < k) { /* not ascending (the decoder checks; a block built in memory may not) */
            if (!have) free(recs);
            return -EINVAL;
        }
        for (; k < at; k++) {
            memset(&recs[k], 0, sizeof recs[k]);
            recs[k].segno = blk->recs[i].segno;
        }
        recs[k++] = blk->recs[i];
    }
    for (uint32_t i = 0; i < blk->n_idems; i++)
        blk->idems[i].rec = (uint32_t)(blk->seqs[blk->idems[i].rec] - x->n - 1);
    x->holes += n - blk->n_recs;
    free(blk->recs);
    free(blk->seqs);
    blk->recs = recs;
    blk->seqs = NULL;
    blk->n_recs = n;
    blk->first_seq = x->n + 1;
    *in_place = have > 0;
    return 0;
}

static int load_block(bp_index *x, bp_iblock *blk, bool ids);

int bp_index_load_block(bp_index *x, bp_iblock *blk) {
    return load_block(x, blk, true);
}

int bp_index_noid_room(bp_index *x) {
    if (x->n_noid < x->noid_cap) return 0;
    uint32_t nc = x->noid_cap ? x->noid_cap * 2 : 16;
    uint64_t *v = realloc(x->noid, (size_t)nc * 2 * sizeof *v);
    if (!v) return -ENOMEM;
    x->noid = v;
    x->noid_cap = nc;
    return 0;
}

int bp_index_load_block_noid(bp_index *x, bp_iblock *blk) {
    return bp_index_noid_room(x) ? -ENOMEM : load_block(x, blk, false);
}

int bp_index_place_ids(bp_index *x, uint64_t from, uint64_t to, const bp_iidem *keys,
                       uint32_t n_keys) {
    uint32_t r = 0;
    while (r < x->n_noid && x->noid[2 * r] != from)
        r++;
    if (r == x->n_noid || x->noid[2 * r + 1] != to || from < x->rbase) return -EINVAL;
    uint64_t events = 0;
    for (uint64_t i = from; i < to; i++)
        events += !BP_IREC_HOLE(&BP_XREC(x, i));
    /* everything that can fail first: the table grows (without this range: it is still
     * listed), the keys' room is made */
    if (idtab_reserve(x, x->n - x->holes - x->noids + events)) return -ENOMEM;
    if (n_keys && grow((void **)&x->idem_slots, &x->idem_cap, x->idem_keys.n + n_keys, 4))
        return -ENOMEM;
    uint32_t added = 0;
    for (; added < n_keys; added++) {
        int64_t k = bp_strtab_add(&x->idem_keys, keys[added].key, keys[added].len);
        if (k < 0) break;
        x->idem_slots[k] = (uint32_t)from + keys[added].rec;
    }
    if (added < n_keys) { /* out of memory: the keys added go again (the newest ones) */
        for (uint32_t k = 0; k < added; k++) {
            x->idem_keys.n--;
            free(x->idem_keys.s[x->idem_keys.n]);
        }
        /* their hash slots: rebuilt from what is left */
        if (x->idem_keys.hcap)
            memset(x->idem_keys.hidx, 0, (size_t)x->idem_keys.hcap * sizeof *x->idem_keys.hidx);
        for (uint32_t k = 0; k < x->idem_keys.n; k++)
            strtab_place(&x->idem_keys, k);
        return -ENOMEM;
    }
    memmove(&x->noid[2 * r], &x->noid[2 * r + 2],
            (size_t)(x->n_noid - r - 1) * 2 * sizeof *x->noid);
    x->n_noid--;
    x->noids -= events;
    for (uint64_t i = from; i < to; i++)
        if (!BP_IREC_HOLE(&BP_XREC(x, i)))
            bp_index_idtab_place(x->idtab, x->idcap, &BP_XREC(x, i).id, (uint32_t)i);
    return 0;
}

static int load_block(bp_index *x, bp_iblock *blk, bool ids) {
    bool in_place = false; /* blk->recs lies in x->recs (densify) */
    if (blk->seqs) {
        int d = densify(x, blk, &in_place);
        if (d) return d;
    }
    uint32_t n = blk->n_recs;
    int rc = -EOVERFLOW;
    uint32_t *emap = NULL, *smap = NULL, *ecount = NULL, *scount = NULL, *kcount = NULL;
    if (x->n + n >= UINT32_MAX - 1) goto out;
    rc = -ENOMEM;
    emap = calloc(blk->n_entities + 1u, 4);
    smap = calloc(blk->n_scopes + 1u, 4);
    ecount = calloc(blk->n_entities + 1u, 4);
    scount = calloc(blk->n_scopes + 1u, 4);
    kcount = calloc(65536, 4);
    if (!emap || !smap || !ecount || !scount || !kcount) goto out;
    for (uint32_t i = 0; i < blk->n_entities; i++) {
        int64_t e = intern_entity(x, blk->entities[i].name, blk->entities[i].len);
        if (e < 0) goto out;
        emap[i] = (uint32_t)e;
    }
    for (uint32_t i = 0; i < blk->n_scopes; i++) {
        int64_t sc = intern_scope(x, blk->scopes[i].name, blk->scopes[i].len);
        if (sc < 0) goto out;
        smap[i] = (uint32_t)sc;
    }
    /* A block names each entity and scope once (writers never repeat one); a repeated name
     * would make two block entries share one list and overrun its reservation below. */
    if ((rc = bp_index_distinct(emap, blk->n_entities, x->entity_names.n)) ||
        (rc = bp_index_distinct(smap, blk->n_scopes, x->scope_names.n)))
        goto out;
    rc = -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (BP_IREC_HOLE(&blk->recs[i])) continue;
        ecount[blk->recs[i].entity]++;
        scount[blk->recs[i].scope]++;
        kcount[blk->recs[i].kind]++;
    }
    /* reserve every list exactly, so the fill loop below cannot fail */
    for (uint32_t i = 0; i < blk->n_entities; i++) {
        bp_u32vec *v = &x->entities[emap[i]].slots;
        if (grow((void **)&v->v, &v->cap, v->n + ecount[i], 4)) goto out;
    }
    for (uint32_t i = 0; i < blk->n_scopes; i++) {
        bp_u32vec *v = &x->scopes[smap[i]];
        if (grow((void **)&v->v, &v->cap, v->n + scount[i], 4)) goto out;
    }
    for (uint32_t k = 0; k < 65536; k++) {
        if (!kcount[k]) continue;
        bp_u32vec *v = bp_index_kind_vec(x, (uint16_t)k);
        if (!v || grow((void **)&v->v, &v->cap, v->n + kcount[k], 4)) goto out;
    }
    uint64_t have = x->n - x->rbase;     /* records in x->recs */
    if (have > 0 && have + n > x->cap) { /* (an empty array takes blk->recs below) */
        uint64_t nc = have + n + 1024;
        bp_irec *r = realloc(x->recs, nc * sizeof *r);
        if (!r) goto out;
        x->recs = r;
        x->cap = nc;
    }
    uint64_t events = 0; /* the block's events (not holes) */
    for (uint32_t i = 0; i < n; i++)
        events += !BP_IREC_HOLE(&blk->recs[i]);
    /* (x->holes has the block's holes) */
    if (idtab_reserve(x, x->n + n - x->holes - x->noids - (ids ? 0 : events))) goto out;
    uint32_t n_idems = ids ? blk->n_idems : 0; /* noid: the segment's file has its keys too */
    if (n_idems && grow((void **)&x->idem_slots, &x->idem_cap, x->idem_keys.n + n_idems, 4))
        goto out;
    for (uint32_t i = 0; i < n_idems; i++) {
        int64_t k = bp_strtab_add(&x->idem_keys, blk->idems[i].key, blk->idems[i].len);
        if (k < 0) goto out;
        x->idem_slots[k] = (uint32_t)x->n + blk->idems[i].rec;
    }
    /* An empty index takes the block's record array instead of copying it (the
     * checkpoint's block holds every record: a copy would double the memory touched). */
    bp_irec *recs = blk->recs;
    if (have == 0 && n > 0) {
        free(x->recs);
        x->recs = recs;
        x->cap = n;
        blk->recs = NULL;
    }
    const uint64_t mask = x->idcap - 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)x->n + i;
        /* the id table is larger than the caches: fetch the slot 16 records ahead */
        if (ids && i + 16 < n) __builtin_prefetch(&x->idtab[id_hash(&recs[i + 16].id) & mask], 1);
        bp_irec r = recs[i];
        if (BP_IREC_HOLE(&r)) {
            BP_XREC(x, slot) = r;
            continue;
        }
        r.entity = emap[r.entity];
        r.scope = smap[r.scope];
        BP_XREC(x, slot) = r;
        bp_u32vec *ev = &x->entities[r.entity].slots, *sv = &x->scopes[r.scope];
        bp_u32vec *kv = &x->kinds[x->kind_ids[r.kind] - 1];
        ev->v[ev->n++] = slot;
        sv->v[sv->n++] = slot;
        kv->v[kv->n++] = slot;
        if (ids) bp_index_idtab_place(x->idtab, x->idcap, &r.id, slot);
    }
    for (uint32_t i = 0; i < blk->n_entities; i++)
        x->entities[emap[i]].head = blk->entity_heads[i];
    if (!ids) { /* (bp_index_load_block_noid made room) */
        x->noid[2 * x->n_noid] = x->n;
        x->noid[2 * x->n_noid + 1] = x->n + n;
        x->n_noid++;
        x->noids += events;
    }
    x->n += n;
    rc = 0;
out:
    if (in_place) blk->recs = NULL; /* x->recs holds them */
    free(emap);
    free(smap);
    free(ecount);
    free(scount);
    free(kcount);
    return rc;
}
