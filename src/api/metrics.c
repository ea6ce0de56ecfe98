/* Metrics in the Prometheus text exposition format (version 0.0.4): what bp_store_stats,
 * bp_store_diagnostics, bp_delivery_stats_get and bp_projection_cache_stats_get report, with
 * the write latency as a histogram over the append-latency buckets of write.c. */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* The histogram's upper bounds, in microseconds. A write.c bucket (8 per power of two) is
 * counted under the first bound at or above its own upper bound, so a bound can undercount
 * by at most one bucket's width (12.5 %): never overcount. */
static const uint64_t LE_US[] = {50,    100,   250,   500,    1000,   2500,   5000,
                                 10000, 25000, 50000, 100000, 250000, 1000000};
#define N_LE (sizeof LE_US / sizeof LE_US[0])

typedef struct out {
    bp_buf b;
    int oom;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...) {
    if (o->oom) return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp || bp_buf_append(&o->b, tmp, (size_t)n)) o->oom = 1;
}

/* One metric with its HELP and TYPE lines and a single unlabelled sample. */
static void metric(out *o, const char *name, const char *type, const char *help, uint64_t v) {
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
        (unsigned long long)v);
}

static void seconds(out *o, const char *name, const char *help, uint64_t us) {
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %llu.%06llu\n", name, help, name, name,
        (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

static void latency(out *o, bp_store *s) {
    uint64_t cum[N_LE] = {0}, total = 0, lat[BP_LAT_BUCKETS], sum;
    if (!bp_store_writer_latency(s, lat, &sum)) bp_store_latency(s, lat, &sum);
    for (unsigned b = 0; b < BP_LAT_BUCKETS; b++) {
        uint64_t n = lat[b];
        if (!n) continue;
        total += n;
        uint64_t ub = bp_lat_bucket_upper(b);
        for (unsigned i = 0; i < N_LE; i++)
            if (ub <= LE_US[i]) cum[i] += n;
    }
    const char *name = "batpak_write_latency_seconds";
    put(o,
        "# HELP %s Append call latency of this handle (a reader's: the live writer's), from the "
        "call to its receipt (durable appends include their fdatasync).\n# TYPE %s histogram\n",
        name, name);
    for (unsigned i = 0; i < N_LE; i++)
        put(o, "%s_bucket{le=\"%llu.%06llu\"} %llu\n", name,
            (unsigned long long)(LE_US[i] / 1000000), (unsigned long long)(LE_US[i] % 1000000),
            (unsigned long long)cum[i]);
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %llu.%06llu\n%s_count %llu\n", name,
        (unsigned long long)total, name, (unsigned long long)(sum / 1000000),
        (unsigned long long)(sum % 1000000), name, (unsigned long long)total);
}

/* Every durable position: counted, then listed (again while more appear meanwhile). */
static bp_status checkpoints(bp_store *s, bp_checkpoint_info **list, size_t *n) {
    size_t cap = 0;
    bp_status rc;
    while ((rc = bp_checkpoints_list(s, *list, cap, n)) == BP_ETOOBIG) {
        free(*list);
        cap = *n;
        if (!(*list = calloc(cap, sizeof **list)))
            return bp_err(BP_ENOMEM, "%s: out of memory listing checkpoints", bp_store_dir(s));
        (*list)[0].struct_size = sizeof **list; /* the stride */
    }
    return rc;
}

bp_status bp_store_prometheus(bp_store *s, char **text) {
    if (text) *text = NULL;
    if (!s || !text) return bp_err(BP_EINVAL, "bp_store_prometheus: NULL argument");
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    bp_store_open_report op = BP_STORE_OPEN_REPORT_INIT;
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT;
    bp_projection_cache_stats pc = BP_PROJECTION_CACHE_STATS_INIT;
    bp_status rc;
    if ((rc = bp_store_stats_get(s, &st)) || (rc = bp_store_diagnostics_get(s, &d)) ||
        (rc = bp_store_open_report_get(s, &op)) || (rc = bp_delivery_stats_get(s, &ds)) ||
        (rc = bp_projection_cache_stats_get(s, &pc)))
        return rc;
    out o = {{0}, 0};
    char uuid[37];
    bp_id id;
    bp_store_uuid(s, id.b);
    bp_id_format(&id, uuid);
    put(&o,
        "# HELP batpak_info The library version and the store's id.\n# TYPE batpak_info "
        "gauge\nbatpak_info{version=\"%s\",store_uuid=\"%s\"} 1\n",
        BP_VERSION_STRING, uuid);
    metric(&o, "batpak_events", "gauge", "Events readers see (compacted-away events excluded).",
           st.events);
    metric(&o, "batpak_entities", "gauge", "Entities known to the index.", st.entities);
    metric(&o, "batpak_scopes", "gauge", "Scopes known to the index.", st.scopes);
    metric(&o, "batpak_segments", "gauge", "Segment files.", st.segments);
    metric(&o, "batpak_disk_bytes", "gauge", "Bytes of the segments, checkpoint and STORE file.",
           st.bytes_on_disk);
    metric(&o, "batpak_index_bytes", "gauge", "Memory held by the in-memory index.",
           st.index_bytes);
    metric(&o, "batpak_index_file_bytes", "gauge",
           "Bytes of the segment index files and entities.ckpt (caches beside the segments).",
           st.index_file_bytes);
    metric(&o, "batpak_readers", "gauge",
           "Read-only handles open on the store in any process (this one included).", st.readers);
    metric(&o, "batpak_writer_pid", "gauge", "The process holding the store writable, 0: none.",
           st.writer_pid);
    put(&o,
        "# HELP batpak_global_seq Highest global_seq published to readers, written to a "
        "segment, and on stable storage.\n# TYPE batpak_global_seq gauge\n"
        "batpak_global_seq{stage=\"published\"} %llu\nbatpak_global_seq{stage=\"written\"} "
        "%llu\nbatpak_global_seq{stage=\"synced\"} %llu\n",
        (unsigned long long)d.published_seq, (unsigned long long)d.written_seq,
        (unsigned long long)d.synced_seq);
    metric(&o, "batpak_appends_total", "counter",
           "Events appended by this handle (a reader's: the live writer's).", st.appends);
    metric(&o, "batpak_fsyncs_total", "counter",
           "fdatasync/fsync calls made by this handle (a reader's: the live writer's).", st.fsyncs);
    latency(&o, s);
    metric(&o, "batpak_unsynced_events", "gauge", "Events written but not yet on stable storage.",
           d.unsynced_events);
    metric(&o, "batpak_pending_bytes", "gauge", "Durable frames queued for the next group commit.",
           d.pending_bytes);
    metric(&o, "batpak_submit_queue_depth", "gauge", "Tickets waiting in bp_submit's queue.",
           d.submit_queued);
    metric(&o, "batpak_submit_queue_capacity", "gauge", "Capacity of bp_submit's bounded queue.",
           d.submit_capacity);
    metric(&o, "batpak_subscriptions", "gauge", "Lossy subscriptions open.", ds.subscriptions);
    metric(&o, "batpak_subscription_queued", "gauge", "Notices waiting in subscription queues.",
           ds.queued);
    metric(&o, "batpak_subscription_dropped_total", "counter",
           "Notices dropped by full subscription queues.", ds.dropped);
    metric(&o, "batpak_workers", "gauge", "Cursor workers and reactors running.", ds.workers);
    metric(&o, "batpak_cursor_lag_events", "gauge",
           "The most events published after what a worker has handled or passed (0: caught up).",
           ds.lag_events_max);
    metric(&o, "batpak_worker_poison_skipped_total", "counter",
           "Events workers skipped as poison (BP_POISON_SKIP); bp_worker_stats names the last.",
           ds.poison_skipped);
    metric(&o, "batpak_projection_cache_entries", "gauge", "Projection states cached.", pc.entries);
    metric(&o, "batpak_projection_cache_hits_total", "counter",
           "Project calls answered without folding.", pc.hits);
    metric(&o, "batpak_projection_cache_misses_total", "counter",
           "Project calls that folded from a snapshot or from init.", pc.misses);
    metric(&o, "batpak_failed", "gauge", "1 when the store fail-stopped after an I/O error.",
           d.failed);
    metric(&o, "batpak_read_only", "gauge", "1 for a read-only handle.", d.read_only);
    seconds(&o, "batpak_open_duration_seconds", "Wall time of this handle's open.", op.duration_us);
    metric(&o, "batpak_open_checkpoint_used", "gauge", "1 when the open loaded index.ckpt.",
           op.checkpoint_used);
    metric(&o, "batpak_open_frames_scanned", "gauge", "Frames this handle's open parsed.",
           op.frames_scanned);
    metric(&o, "batpak_open_bytes_cut", "gauge",
           "Torn-tail or incomplete-batch bytes this handle's open removed.", op.bytes_cut);
    size_t nck = 0;
    bp_checkpoint_info *ck = NULL;
    if ((rc = checkpoints(s, &ck, &nck))) {
        free(ck);
        bp_buf_free(&o.b);
        return rc;
    }
    if (nck)
        put(&o, "# HELP batpak_checkpoint_lag_events Events published after a durable position "
                "(DIR/cursors/ID.ckpt: workers, reactors, relays).\n# TYPE "
                "batpak_checkpoint_lag_events gauge\n");
    for (size_t i = 0; i < nck; i++)
        put(&o, "batpak_checkpoint_lag_events{id=\"%s\"} %llu\n", ck[i].id,
            (unsigned long long)ck[i].lag_events);
    free(ck);
    if (!o.oom && bp_buf_append(&o.b, "", 1)) o.oom = 1; /* the NUL */
    if (o.oom) {
        bp_buf_free(&o.b);
        return bp_err(BP_ENOMEM, "bp_store_prometheus: out of memory");
    }
    *text = (char *)o.b.data;
    return BP_OK;
}
