/* The in-memory index and the six tier (index.h): putting the tier's slots back in the
 * entity, scope and kind lists. */
#include "store/index.h"

#include <errno.h>
#include <stdlib.h>

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
