/* diagnostics: the open report, the writer's watermarks and queues, the failed
 * state, and a summary of every segment. */
#include "store/store_impl.h"

#include <stdio.h>
#include <stdlib.h>

/* [i] held shared: does the cache hold a mapping of g? */
static bool mapped(const bp_segment *g) {
    const bp_segfile *f = __atomic_load_n(&g->rd, __ATOMIC_ACQUIRE);
    return f && f->p;
}

bp_status bp_store_diagnostics_get(bp_store *s, bp_store_diagnostics *out) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_store_diagnostics_get: NULL argument");
    BP_SIZE_CHECK("bp_store_diagnostics_get", out, bp_store_diagnostics, BP_STORE_DIAGNOSTICS_INIT);
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->read_only = s->read_only;
    bp_submit_depth(s, &out->submit_queued, &out->submit_capacity);
    bp_live_figs *wf = s->read_only ? malloc(sizeof *wf) : NULL; /* a live writer's state */
    if (wf && bp_live_writer_figures(s, wf) && wf->failed) {
        out->failed = true;
        snprintf(out->failed_msg, sizeof out->failed_msg, "%s", wf->failed_msg);
    }
    free(wf);
    pthread_mutex_lock(&s->wmu);
    out->written_seq = s->written_seq;
    out->synced_seq = s->synced_seq;
    out->unsynced_events = s->unsynced;
    out->pending_bytes = s->pending.len;
    out->syncing = s->syncing;
    if (s->failed) {
        out->failed = true;
        snprintf(out->failed_msg, sizeof out->failed_msg, "%s", s->failed_msg);
    }
    pthread_rwlock_rdlock(&s->ilock);
    out->published_seq = s->published;
    out->segments = s->n_segs;
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->wmu);
    return BP_OK;
}

/* [w] and [i] shared held: the summary of segment i. */
static bp_segment_info segment_info(bp_store *s, uint32_t i) {
    const bp_segment *g = &s->segs[i];
    uint64_t end = bp_seg_end_slot(s, i);
    uint64_t lo = g->first_slot, hi = end, n = end - lo;
    if (g->six_tier) { /* its records are in its index file, which has the counts */
        const bp_six *x = &g->six->x;
        n = x->n_recs;
        lo = x->first_seq - 1;
        hi = x->last_seq;
        if (g->six_end) { /* a piece, and past it the events in memory (never holes) */
            n += end - g->six_end;
            hi = end;
        }
    } else if (g->segno <= s->anchors.last_segno) { /* compacted: its slots may be holes */
        while (lo < hi && BP_IREC_HOLE(&BP_XREC(&s->idx, lo)))
            lo++;
        while (hi > lo && BP_IREC_HOLE(&BP_XREC(&s->idx, hi - 1)))
            hi--;
        n = 0;
        for (uint64_t k = lo; k < hi; k++)
            n += !BP_IREC_HOLE(&BP_XREC(&s->idx, k));
    }
    return (bp_segment_info){sizeof(bp_segment_info), g->segno,         g->size,   n,
                             hi > lo ? lo + 1 : 0,    hi > lo ? hi : 0, g->sealed, mapped(g)};
}

bp_status bp_store_segments_list(bp_store *s, bp_segment_info *out, size_t max, size_t *n) {
    if (!s || !n || (max && !out))
        return bp_err(BP_EINVAL, "bp_store_segments_list: NULL argument");
    if (max) BP_SIZE_CHECK("bp_store_segments_list", out, bp_segment_info, BP_SEGMENT_INFO_INIT);
    pthread_mutex_lock(&s->wmu); /* the active segment's size moves under it */
    pthread_rwlock_rdlock(&s->ilock);
    *n = s->n_segs;
    for (uint32_t i = 0; i < s->n_segs && i < max; i++)
        out[i] = segment_info(s, i);
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->wmu);
    if (*n > max)
        return bp_err(BP_ETOOBIG, "bp_store_segments_list: %zu segments, room for %zu", *n, max);
    return BP_OK;
}
