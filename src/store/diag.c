/* diagnostics: the open report, the writer's watermarks and queues, the failed
 * state, and a summary of every segment. */
#include "store/store_impl.h"

#include <stdio.h>

/* [i] held shared: does the cache hold a mapping of g? */
static bool mapped(const bp_segment *g) {
    const bp_segfile *f = __atomic_load_n(&g->rd, __ATOMIC_ACQUIRE);
    return f && f->p;
}

bp_status bp_store_diagnostics(bp_store *s, bp_diagnostics *out, bp_segment_info *segs,
                               uint32_t max_segs) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_store_diagnostics: NULL argument");
    if (out->version != BP_DIAGNOSTICS_VERSION)
        return bp_err(BP_EINVAL, "bp_diagnostics.version %u unknown (expected %d)", out->version,
                      BP_DIAGNOSTICS_VERSION);
    if (max_segs && !segs) return bp_err(BP_EINVAL, "bp_store_diagnostics: segs is NULL");
    memset(out, 0, sizeof *out);
    out->version = BP_DIAGNOSTICS_VERSION;
    out->open = s->report;
    out->read_only = s->read_only;
    bp_submit_depth(s, &out->submit_queued, &out->submit_capacity);
    pthread_mutex_lock(&s->wmu);
    out->written_seq = s->written_seq;
    out->synced_seq = s->synced_seq;
    out->unsynced_events = s->unsynced;
    out->pending_bytes = s->pending.len;
    out->syncing = s->syncing;
    out->failed = s->failed != 0;
    if (s->failed) snprintf(out->failed_msg, sizeof out->failed_msg, "%s", s->failed_msg);
    pthread_rwlock_rdlock(&s->ilock);
    out->published_seq = s->published;
    out->segments = s->n_segs;
    for (uint32_t i = 0; i < s->n_segs && i < max_segs; i++) {
        const bp_segment *g = &s->segs[i];
        uint64_t end = i + 1 < s->n_segs ? s->segs[i + 1].first_slot : s->idx.n;
        uint64_t lo = g->first_slot, hi = end, n = end - lo;
        if (g->segno <= s->anchors.last_segno) { /* compacted: its slots may be holes */
            while (lo < hi && BP_IREC_HOLE(&s->idx.recs[lo]))
                lo++;
            while (hi > lo && BP_IREC_HOLE(&s->idx.recs[hi - 1]))
                hi--;
            n = 0;
            for (uint64_t k = lo; k < hi; k++)
                n += !BP_IREC_HOLE(&s->idx.recs[k]);
        }
        segs[i] = (bp_segment_info){g->segno,         g->size,   n,        hi > lo ? lo + 1 : 0,
                                    hi > lo ? hi : 0, g->sealed, mapped(g)};
    }
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->wmu);
    return BP_OK;
}
