/*
 * snapshot_compact: keep a store small without losing what you need.
 *
 *   1. bp_store_snapshot makes a consistent online backup into a new directory (DIR-snapshot):
 *      a whole store that opens and verifies on its own, with exactly the events so far.
 *   2. bp_tombstone marks an entity deleted; bp_compact then merges the sealed segments and
 *      drops, per entity, the oldest events its policy says: here all but the newest 3, and
 *      everything of a tombstoned entity. What is kept is byte for byte the same; each chain
 *      stays verifiable from an anchor (the clock and hash of its last dropped event), and
 *      the entity's clocks go on from there.
 *
 * What to look at: the compaction report, the session keeping clocks 8..10 and going on at
 * 11, the deleted user with no events left, verify clean after, and the snapshot still holding
 * the full history.
 *
 *   usage: snapshot_compact DIR      (re-runnable: DIR-snapshot is removed first)
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <batpak/batpak.h>

#include <ftw.h>
#include <stdio.h>
#include <string.h>

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

static int fail(const char *what) {
    fprintf(stderr, "snapshot_compact: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "snapshot_compact: %s\n", what);
    return 1;
}

/* Number of events of entity and the clock of the first one. */
static bp_status count(bp_store *s, const char *entity, uint64_t *n, uint64_t *first_clock) {
    bp_iter *it;
    const bp_event *ev;
    bp_status rc = bp_stream(s, &it, entity, BP_READ_INDEX_ONLY);
    for (*n = *first_clock = 0; !rc && (rc = bp_iter_next(it, &ev)) == BP_OK;)
        if (++*n == 1) *first_clock = ev->clock;
    bp_iter_free(it);
    return rc == BP_DONE ? BP_OK : rc;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./compact-data";
    char backup[1024], session[48], user[48];
    size_t n_dir = strlen(dir);
    while (n_dir > 1 && dir[n_dir - 1] == '/') /* "data/" -> "data-snapshot", not inside it */
        n_dir--;
    snprintf(backup, sizeof backup, "%.*s-snapshot", (int)n_dir, dir);
    nftw(backup, remove_one, 16, FTW_DEPTH | FTW_PHYS); /* the previous run's, if any */

    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096; /* tiny segments, so that there are several to merge */
    bp_store *s;
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_open(&s, dir, &o) || bp_store_stats_get(s, &st)) return fail("open");
    snprintf(session, sizeof session, "session:%llu", (unsigned long long)st.events); /* new */
    snprintf(user, sizeof user, "user:%llu", (unsigned long long)st.events);
    uint8_t blob[202] = {0xc4, 200}; /* MessagePack bin8 of 200 bytes */
    for (int i = 0; i < 10; i++)
        if (bp_append(s, NULL, session, "web", BP_KIND(8, 1), blob, sizeof blob))
            return fail("append");
    for (int i = 0; i < 3; i++)
        if (bp_append(s, NULL, user, "crm", BP_KIND(8, 2), blob, sizeof blob))
            return fail("append");
    if (bp_tombstone(s, NULL, user, "crm")) return fail("tombstone");

    /* 1. the backup, taken online */
    bp_snapshot_report sr = BP_SNAPSHOT_REPORT_INIT;
    if (bp_store_snapshot(s, &sr, backup) || bp_store_stats_get(s, &st)) return fail("snapshot");
    printf("snapshot  %s: events 1..%llu, %u segment(s), %llu bytes\n", backup,
           (unsigned long long)sr.global_seq, sr.segments, (unsigned long long)sr.bytes);

    /* 2. compaction: the newest 3 events of each entity, nothing of tombstoned ones */
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 3;
    co.tombstoned = true;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    if (bp_compact(s, &cr, &co)) return fail("compact");
    printf("compact   %u segment(s) -> %u, %llu events kept, %llu removed, %llu -> %llu bytes, "
           "%u entities anchored\n",
           cr.segments_before, cr.segments_after, (unsigned long long)cr.events_kept,
           (unsigned long long)cr.events_removed, (unsigned long long)cr.bytes_before,
           (unsigned long long)cr.bytes_after, cr.entities_anchored);
    uint64_t n, first, head, user_n;
    bp_receipt r = BP_RECEIPT_INIT;
    if (count(s, user, &user_n, &first) || count(s, session, &n, &first) ||
        bp_append(s, &r, session, "web", BP_KIND(8, 1), blob, sizeof blob) ||
        bp_entity_head(s, &head, NULL, user))
        return fail("read after compaction");
    printf("after     %s keeps clocks %llu..%llu and goes on at %llu; %s: %llu events, "
           "its head stays at clock %llu\n",
           session, (unsigned long long)first, (unsigned long long)(first + n - 1),
           (unsigned long long)r.clock, user, (unsigned long long)user_n, (unsigned long long)head);
    if (n != 3 || first != 8 || r.clock != 11 || user_n != 0 || head != 4)
        return wrong("compaction did not keep what its policy says");
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    uint8_t id[16], copy_id[16];
    bp_store_uuid(s, id);
    if (bp_store_verify(s, &vr, NULL)) return fail(vr.first_problem);
    if (bp_store_close(s)) return fail("close");

    /* the backup: a store of its own, still holding the full history */
    bp_store_stats cs = BP_STORE_STATS_INIT;
    o.read_only = true;
    if (bp_store_open(&s, backup, &o)) return fail("open the snapshot");
    if (bp_store_verify(s, &vr, NULL)) return fail(vr.first_problem);
    if (bp_store_stats_get(s, &cs) || count(s, session, &n, &first))
        return fail("read the snapshot");
    bp_store_uuid(s, copy_id);
    if (bp_store_close(s)) return fail("close the snapshot");
    printf(
        "verify    store clean after compaction; snapshot clean, %llu events, %s with all %llu\n",
        (unsigned long long)cs.events, session, (unsigned long long)n);
    if (n != 10 || cs.events != st.events || memcmp(id, copy_id, 16) != 0)
        return wrong("the snapshot is not the store as it was");
    return 0;
}
