/* Running heads of entity chains outside the index (index.h bp_chains). */
#include "store/index.h"

#include <errno.h>
#include <stdlib.h>

int64_t bp_chains_find(const bp_chains *c, const char *e, size_t len) {
    return bp_strtab_find(&c->names, e, len);
}

int64_t bp_chains_add(bp_chains *c, const char *e, size_t len, uint64_t clock,
                      const bp_hash *head) {
    if (c->names.n == c->cap) { /* clock and head grow together */
        uint32_t nc = c->cap ? c->cap * 2 : 8;
        uint64_t *nk = realloc(c->clock, (size_t)nc * sizeof *nk);
        if (nk) c->clock = nk;
        bp_hash *h = nk ? realloc(c->head, (size_t)nc * sizeof *h) : NULL;
        if (!h) return -ENOMEM; /* (a grown clock array alone is harmless) */
        c->head = h;
        c->cap = nc;
    }
    int64_t k = bp_strtab_add(&c->names, e, len);
    if (k < 0) return k;
    c->clock[k] = clock;
    c->head[k] = *head;
    return k;
}

void bp_chains_free(bp_chains *c) {
    bp_strtab_free(&c->names);
    free(c->clock);
    free(c->head);
    memset(c, 0, sizeof *c);
}
