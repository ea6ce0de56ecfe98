/* The in-memory index and the six tier (index.h): putting the tier's slots back in the
 * entity, scope and kind lists. */
#include "store/index.h"

#include <errno.h>
#include <stdlib.h>

uint32_t bp_u32vec_lower_bound(const bp_u32vec *v, uint64_t slot) {
    uint32_t lo = 0, hi = v->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v->v[mid] < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Prepend the tier slots of each list: counts from the records below list_base, then one
 * new array per list. */
static int untier_lists(bp_index *x, bp_u32vec *lists, uint32_t n_lists, int which) {
    uint32_t *count = calloc((size_t)n_lists + 1, sizeof *count);
    if (!count) return -ENOMEM;
    for (uint64_t q = 0; q < x->list_base; q++) {
        const bp_irec *r = &BP_XREC(x, q);
        if (BP_IREC_HOLE(r)) continue;
        count[which == 0 ? r->entity : which == 1 ? r->scope : x->kind_ids[r->kind] - 1u]++;
    }
    uint32_t **nv = calloc((size_t)n_lists + 1, sizeof *nv);
    int rc = nv ? 0 : -ENOMEM;
    for (uint32_t i = 0; !rc && i < n_lists; i++) {
        if (!count[i]) continue;
        nv[i] = malloc(((size_t)count[i] + lists[i].n) * sizeof(uint32_t));
        if (!nv[i]) rc = -ENOMEM;
    }
    if (!rc) {
        uint32_t *fill = count; /* reused: the next free place in each new array */
        memset(fill, 0, ((size_t)n_lists + 1) * sizeof *fill);
        for (uint64_t q = 0; q < x->list_base; q++) {
            const bp_irec *r = &BP_XREC(x, q);
            if (BP_IREC_HOLE(r)) continue;
            uint32_t i = which == 0 ? r->entity : which == 1 ? r->scope : x->kind_ids[r->kind] - 1u;
            nv[i][fill[i]++] = (uint32_t)q;
        }
        for (uint32_t i = 0; i < n_lists; i++) {
            if (!nv[i]) continue;
            if (lists[i].n) /* (an empty list may have no array) */
                memcpy(nv[i] + fill[i], lists[i].v, (size_t)lists[i].n * sizeof(uint32_t));
            free(lists[i].v);
            lists[i].v = nv[i];
            lists[i].n += fill[i];
            lists[i].cap = lists[i].n;
            nv[i] = NULL;
        }
    }
    for (uint32_t i = 0; nv && i < n_lists; i++)
        free(nv[i]);
    free(nv);
    free(count);
    return rc;
}

int bp_index_untier(bp_index *x, bp_irec *below) {
    if (x->rbase) {
        if (!below) return -EINVAL;
        uint64_t have = x->n - x->rbase;
        bp_irec *all = realloc(below, (size_t)(x->n ? x->n : 1) * sizeof *all);
        if (!all) {
            free(below);
            return -ENOMEM;
        }
        if (have) memcpy(all + x->rbase, x->recs, (size_t)have * sizeof *all);
        free(x->recs);
        x->recs = all;
        x->cap = x->n ? x->n : 1;
        x->rbase = 0;
    } else {
        free(below);
    }
    if (!x->list_base) return 0;
    /* kinds first: a kind only the tier has gets its (empty) list now, so that a failure
     * further on leaves nothing half done but lists that only gained entries */
    for (uint64_t q = 0; q < x->list_base; q++)
        if (!BP_IREC_HOLE(&BP_XREC(x, q)) && !bp_index_kind_vec(x, BP_XREC(x, q).kind))
            return -ENOMEM;
    /* entity lists through a temporary array of the vectors */
    uint32_t ne = x->entity_names.n;
    bp_u32vec *ev = malloc(((size_t)ne + 1) * sizeof *ev);
    if (!ev) return -ENOMEM;
    for (uint32_t e = 0; e < ne; e++)
        ev[e] = x->entities[e].slots;
    int rc = untier_lists(x, ev, ne, 0);
    if (!rc) {
        for (uint32_t e = 0; e < ne; e++) {
            x->entities[e].slots = ev[e];
            x->entities[e].tier = 0;
        }
    }
    free(ev);
    if (!rc) rc = untier_lists(x, x->scopes, x->scope_names.n, 1);
    if (!rc) rc = untier_lists(x, x->kinds, x->n_kinds, 2);
    if (!rc) x->list_base = 0;
    return rc;
}

int bp_index_load_tier(bp_index *x, const bp_iblock *blk) {
    if (x->n != x->list_base || x->n != x->rbase) return -EINVAL; /* the tier is a prefix */
    uint32_t n = blk->n_recs;
    if (!n) return -EINVAL;
    uint64_t first = blk->seqs ? blk->seqs[0] : blk->first_seq;
    uint64_t last = blk->seqs ? blk->seqs[n - 1] : blk->first_seq + n - 1;
    if (first <= x->n || (!blk->seqs && first != x->n + 1)) return -EINVAL;
    if (last >= UINT32_MAX - 1) return -EOVERFLOW;
    for (uint32_t i = 1; blk->seqs && i < n; i++)
        if (blk->seqs[i] <= blk->seqs[i - 1]) return -EINVAL;
    uint32_t *emap = calloc(blk->n_entities + 1u, 4);
    int rc = emap && !bp_index_noid_room(x) ? 0 : -ENOMEM;
    for (uint32_t i = 0; !rc && i < blk->n_entities; i++) {
        int64_t e = bp_index_intern(x, blk->entities[i].name, blk->entities[i].len, false);
        if (e < 0) rc = -ENOMEM;
        emap[i] = (uint32_t)e;
    }
    for (uint32_t i = 0; !rc && i < blk->n_scopes; i++) /* (a query by scope looks names up) */
        if (bp_index_intern(x, blk->scopes[i].name, blk->scopes[i].len, true) < 0) rc = -ENOMEM;
    if (!rc) rc = bp_index_distinct(emap, blk->n_entities, x->entity_names.n);
    for (uint32_t i = 0; !rc && i < n; i++)
        if (blk->recs[i].entity >= blk->n_entities || BP_IREC_HOLE(&blk->recs[i])) rc = -EINVAL;
    if (!rc) {
        for (uint32_t i = 0; i < n; i++)
            x->entities[emap[blk->recs[i].entity]].tier++;
        for (uint32_t i = 0; i < blk->n_entities; i++)
            x->entities[emap[i]].head = blk->entity_heads[i];
        x->noid[2 * x->n_noid] = x->n;
        x->noid[2 * x->n_noid + 1] = last;
        x->n_noid++;
        x->noids += n;
        x->holes += last - x->n - n;
        x->n = x->rbase = x->list_base = last;
    }
    free(emap);
    return rc;
}

int bp_index_tier_ranges(bp_index *x, const uint64_t *bounds, uint32_t n, uint64_t holes) {
    if (x->n || x->rbase || x->list_base || x->n_noid || !n || bounds[0]) return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (bounds[i] >= bounds[i + 1]) return -EINVAL;
    if (holes > bounds[n] || bounds[n] >= UINT32_MAX - 1) return -EINVAL;
    uint64_t *v = malloc((size_t)n * 2 * sizeof *v);
    if (!v) return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        v[2 * i] = bounds[i];
        v[2 * i + 1] = bounds[i + 1];
    }
    free(x->noid);
    x->noid = v;
    x->n_noid = x->noid_cap = n;
    x->holes = holes;
    x->noids = bounds[n] - holes;
    x->n = x->rbase = x->list_base = bounds[n];
    return 0;
}

/* Drop the entries below upto from the front of an ascending list; the count dropped. A list
 * left much smaller than its array gets a smaller one (a failure to shrink keeps the old). */
static uint32_t drop_below(bp_u32vec *v, uint64_t upto) {
    uint32_t k = bp_u32vec_lower_bound(v, upto);
    if (!k) return 0;
    v->n -= k;
    if (v->n) memmove(v->v, v->v + k, (size_t)v->n * sizeof *v->v);
    if (!v->n) {
        free(v->v);
        v->v = NULL;
        v->cap = 0;
    } else if (v->n * 4u < v->cap) {
        uint32_t *nv = realloc(v->v, (size_t)v->n * sizeof *nv);
        if (nv) {
            v->v = nv;
            v->cap = v->n;
        }
    }
    return k;
}

int bp_index_retier(bp_index *x, const uint64_t *bounds, uint32_t nb) {
    if (!nb || x->rbase != x->list_base || bounds[0] != x->rbase || bounds[nb] > x->n)
        return -EINVAL;
    for (uint32_t k = 0; k < nb; k++)
        if (bounds[k] >= bounds[k + 1]) return -EINVAL;
    const uint64_t from = bounds[0], upto = bounds[nb];
    /* the noid ranges: below from (kept), within (each one of the new ranges), from upto on */
    uint32_t lo = 0, mid = 0, k = 0;
    uint64_t old_noid_events = 0; /* of the ranges within */
    for (uint32_t r = 0; r < x->n_noid; r++) {
        uint64_t a = x->noid[2 * r], b = x->noid[2 * r + 1];
        if (b <= from) {
            lo++;
            continue;
        }
        if (a >= upto) break;
        while (k < nb && bounds[k] < a)
            k++;
        if (a < from || b > upto || k == nb || bounds[k] != a || bounds[k + 1] != b)
            return -EINVAL; /* across the new ranges */
        mid++;
        for (uint64_t q = a; q < b; q++)
            old_noid_events += !BP_IREC_HOLE(&BP_XREC(x, q));
    }
    uint32_t hi = x->n_noid - lo - mid;
    uint64_t events = 0; /* of the new tier */
    for (uint64_t q = from; q < upto; q++)
        events += !BP_IREC_HOLE(&BP_XREC(x, q));
    uint64_t noids = x->noids - old_noid_events + events;

    /* everything that can fail: the new noid list, records, id table and keys */
    uint32_t nn = lo + nb + hi;
    uint64_t keep = x->n - upto;
    uint64_t rcap = keep > 1024 ? keep : 1024;
    uint64_t placed = x->n - x->holes - noids; /* ids the table holds: the kept records' */
    uint64_t icap = 1024;
    while (placed * 2 > icap)
        icap *= 2;
    uint64_t *nv = malloc((size_t)nn * 2 * sizeof *nv);
    bp_irec *nr = malloc((size_t)rcap * sizeof *nr);
    uint32_t *nt = calloc((size_t)icap, sizeof *nt);
    bp_strtab nk;
    memset(&nk, 0, sizeof nk);
    uint32_t n_keys = 0;
    for (uint32_t i = 0; i < x->idem_keys.n; i++)
        n_keys += x->idem_slots[i] >= upto;
    uint32_t *ns = malloc(((size_t)n_keys + 1) * sizeof *ns);
    int rc = nv && nr && nt && ns ? 0 : -ENOMEM;
    for (uint32_t i = 0; !rc && i < x->idem_keys.n; i++) {
        if (x->idem_slots[i] < upto) continue;
        int64_t id = bp_strtab_add(&nk, x->idem_keys.s[i], x->idem_keys.len[i]);
        if (id < 0)
            rc = -ENOMEM;
        else
            ns[id] = x->idem_slots[i];
    }
    if (rc) {
        free(nv);
        free(nr);
        free(nt);
        free(ns);
        bp_strtab_free(&nk);
        return rc;
    }

    /* nothing fails from here on */
    if (lo) memcpy(nv, x->noid, (size_t)lo * 2 * sizeof *nv); /* (noid may be NULL) */
    for (uint32_t i = 0; i < nb; i++) {
        nv[2 * (lo + i)] = bounds[i];
        nv[2 * (lo + i) + 1] = bounds[i + 1];
    }
    if (hi) memcpy(nv + 2 * (lo + nb), x->noid + 2 * (lo + mid), (size_t)hi * 2 * sizeof *nv);
    uint32_t ne = x->entity_names.n; /* (ilock held exclusively: none interned meanwhile) */
    for (uint32_t e = 0; e < ne; e++)
        x->entities[e].tier += drop_below(&x->entities[e].slots, upto);
    for (uint32_t i = 0; i < x->scope_names.n; i++)
        drop_below(&x->scopes[i], upto);
    for (uint32_t i = 0; i < x->n_kinds; i++)
        drop_below(&x->kinds[i], upto);
    if (keep) memcpy(nr, &BP_XREC(x, upto), (size_t)keep * sizeof *nr);
    free(x->recs);
    x->recs = nr;
    x->cap = rcap;
    x->rbase = x->list_base = upto;
    free(x->noid);
    x->noid = nv;
    x->n_noid = x->noid_cap = nn;
    x->noids = noids;
    uint32_t r = lo + nb; /* the next noid range from upto on */
    for (uint64_t q = upto; q < x->n; q++) {
        if (r < x->n_noid && q == x->noid[2 * r]) { /* its ids are not placed */
            q = x->noid[2 * r + 1] - 1;
            r++;
            continue;
        }
        if (!BP_IREC_HOLE(&BP_XREC(x, q)))
            bp_index_idtab_place(nt, icap, &BP_XREC(x, q).id, (uint32_t)q);
    }
    free(x->idtab);
    x->idtab = nt;
    x->idcap = icap;
    bp_strtab_free(&x->idem_keys);
    free(x->idem_slots);
    x->idem_keys = nk;
    x->idem_slots = ns;
    x->idem_cap = n_keys + 1;
    return 0;
}

void bp_index_noid_join(bp_index *x, uint64_t at) {
    for (uint32_t r = 0; r + 1 < x->n_noid; r++) {
        if (x->noid[2 * r + 1] != at || x->noid[2 * r + 2] != at) continue;
        x->noid[2 * r + 1] = x->noid[2 * r + 3];
        memmove(x->noid + 2 * r + 2, x->noid + 2 * r + 4,
                (size_t)(x->n_noid - r - 2) * 2 * sizeof *x->noid);
        x->n_noid--;
        return;
    }
}
