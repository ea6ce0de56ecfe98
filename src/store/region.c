/* Region filters: a bp_region validated and copied, matched against index records by
 * iterators, cursors and subscriptions. */
#include "store/store_impl.h"

#include <stdlib.h>

static bp_status region_check(const bp_region *r) {
    BP_SIZE_CHECK("region", r, bp_region, BP_REGION_INIT);
    bp_status rc;
    if (r->entity && (rc = bp_coord_validate("region entity", r->entity))) return rc;
    if (r->scope && (rc = bp_coord_validate("region scope", r->scope))) return rc;
    if (r->entity_prefix && strlen(r->entity_prefix) > BP_COORD_MAX)
        return bp_err(BP_EINVAL, "region entity_prefix: longer than %d bytes", BP_COORD_MAX);
    if (r->n_kinds && !r->kinds) return bp_err(BP_EINVAL, "region: n_kinds > 0 but kinds is NULL");
    if (r->category < -1 || r->category > 15)
        return bp_err(BP_EINVAL, "region category %d out of range (-1 or 0..15)", r->category);
    return BP_OK;
}

static char *dup_or_null(const char *s, bool *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

bp_status bp_rfilter_init(bp_rfilter *f, const bp_region *r) {
    memset(f, 0, sizeof *f);
    if (!r) return bp_err(BP_EINVAL, "region: NULL");
    bp_status rc = region_check(r);
    if (rc) return rc;
    bool oom = false;
    f->entity = dup_or_null(r->entity, &oom);
    f->prefix = dup_or_null(r->entity_prefix, &oom);
    f->prefix_len = f->prefix ? strlen(f->prefix) : 0;
    f->scope = dup_or_null(r->scope, &oom);
    if (r->n_kinds) {
        f->kinds = malloc(r->n_kinds * sizeof *f->kinds);
        if (f->kinds)
            memcpy(f->kinds, r->kinds, r->n_kinds * sizeof *f->kinds);
        else
            oom = true;
        f->n_kinds = r->n_kinds;
    }
    f->category = r->category;
    f->from_seq = r->from_seq;
    f->to_seq = r->to_seq;
    f->since_ms = r->since_ms;
    f->until_ms = r->until_ms;
    if (oom) {
        bp_rfilter_free(f);
        return bp_err(BP_ENOMEM, "region: out of memory");
    }
    return BP_OK;
}

void bp_rfilter_free(bp_rfilter *f) {
    free(f->entity);
    free(f->prefix);
    free(f->scope);
    free(f->kinds);
    memset(f, 0, sizeof *f);
}
