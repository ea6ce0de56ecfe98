/* Control plane, looking into a store: diagnostics (per segment, synced and published seqs, a
 * fail-stopped store), walk_ancestors (chain and causation walks, a tampered link) and
 * verify's per-entity reports, also of a foreign index.ckpt. */
#include "t.h"
#include "bp_testing.h"
#include "format/format.h"
#include "platform/platform.h"

#include <fcntl.h>

/* ------------------------------------------------------------ diagnostics */

static void test_diagnostics(void) {
    const char *dir = t_dir("diag");
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts o = {
        .segment_size = 4096, .fault = &f, .durability = BP_NO_SYNC, .open_event = true};
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &o));
    for (int i = 0; i < 200; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    CHECK_OK(bp_store_diagnostics_get(s, &d));
    bp_segment_info seg[64] = {BP_SEGMENT_INFO_INIT};
    size_t nseg;
    CHECK_OK(bp_store_segments_list(s, seg, 64, &nseg));
    CHECK_EQ(nseg, d.segments);
    for (size_t k = 0; k < nseg; k++)
        CHECK_EQ(seg[k].struct_size, sizeof seg[k]);
    bp_store_open_report op = BP_STORE_OPEN_REPORT_INIT;
    CHECK_OK(bp_store_open_report_get(s, &op));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(d.segments, st.segments);
    CHECK(d.segments > 2 && d.segments <= 64);
    CHECK(op.created);
    CHECK_EQ(d.written_seq, 201); /* with the open event */
    CHECK_EQ(d.published_seq, 201);
    CHECK(d.synced_seq < d.written_seq);
    CHECK_EQ(d.unsynced_events, d.written_seq - d.synced_seq);
    CHECK(!d.failed && !d.read_only);
    uint64_t next = 1, events = 0;
    for (uint32_t i = 0; i < d.segments; i++) {
        CHECK_EQ(seg[i].sealed, i + 1 < d.segments);
        CHECK(seg[i].bytes > 0);
        if (seg[i].events) {
            CHECK_EQ(seg[i].first_seq, next);
            CHECK_EQ(seg[i].last_seq, seg[i].first_seq + seg[i].events - 1);
            next = seg[i].last_seq + 1;
        }
        events += seg[i].events;
    }
    CHECK_EQ(events, 201);
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp_store_diagnostics_get(s, &d));
    CHECK_EQ(d.synced_seq, d.written_seq);
    CHECK_EQ(d.unsynced_events, 0);
    /* a fail-stopped store says so, with the original error */
    f.fail_sync_at = f.syncs + 1;
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1));
    CHECK_EQ(bp_store_sync(s), BP_EIO);
    CHECK_OK(bp_store_diagnostics_get(s, &d));
    CHECK(d.failed);
    CHECK(strstr(d.failed_msg, "fdatasync") != NULL);
    /* too few slots: the first ones are filled, and the count says how many exist */
    seg[0].segno = seg[1].segno = 12345;
    CHECK_FAILS(bp_store_segments_list(s, seg, 1, &nseg), BP_ETOOBIG, "room for 1");
    CHECK_EQ(nseg, d.segments);
    CHECK(seg[0].segno != 12345 && seg[0].bytes > 0);
    CHECK_EQ(seg[1].segno, 12345);
    nseg = 0;
    CHECK_EQ(bp_store_segments_list(s, NULL, 0, &nseg), BP_ETOOBIG); /* the count alone */
    CHECK_EQ(nseg, d.segments);
    d.struct_size = 99;
    CHECK_FAILS(bp_store_diagnostics_get(s, &d), BP_EINVAL, "struct_size is 99");
    d.struct_size = sizeof d;
    seg[0].struct_size = 7;
    CHECK_FAILS(bp_store_segments_list(s, seg, 3, &nseg), BP_EINVAL, "BP_SEGMENT_INFO_INIT");
    CHECK_FAILS(bp_store_segments_list(s, NULL, 3, &nseg), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_store_diagnostics_get(NULL, &d), BP_EINVAL, "NULL");
    bp_store_close(s);
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* --------------------------------------------------------- walk_ancestors */

typedef struct walked {
    uint64_t clock[16];
    char entity[16][32];
    uint32_t depth[16];
    int n, stop_at;
} walked;

static bp_status on_ancestor(void *ctx, const bp_event *ev, uint32_t depth) {
    walked *w = ctx;
    if (w->n >= 16) return BP_EINVAL;
    w->clock[w->n] = ev->clock;
    snprintf(w->entity[w->n], sizeof w->entity[0], "%s", ev->entity);
    w->depth[w->n] = depth;
    w->n++;
    if (w->stop_at && w->n == w->stop_at) return BP_DONE;
    if (ev->payload_len == 4 && memcmp(ev->payload, "fail", 4) == 0)
        return bp_set_error(BP_EDENIED, "the callback refused");
    return BP_OK;
}

/* Change one byte of the stored frame holding the bytes `needle` (and fix its CRC). */
static int tamper_frame(const char *seg, const uint8_t *needle, size_t nlen) {
    int fd = open(seg, O_RDWR);
    if (fd < 0) return -1;
    static uint8_t buf[1 << 20];
    ssize_t len = pread(fd, buf, sizeof buf, 0);
    int rc = -1;
    for (size_t off = BP_SEG_HEADER_SIZE; len > 0 && off + BP_FRAME_PREFIX <= (size_t)len;) {
        uint32_t blen = bp_get_be32(buf + off);
        uint8_t *body = buf + off + BP_FRAME_PREFIX;
        uint8_t *hit = memmem(body, blen, needle, nlen);
        if (hit) {
            hit[0] ^= 0x01;
            bp_put_be32(buf + off + 4, bp_crc32(body, blen));
            rc = pwrite(fd, buf + off, BP_FRAME_PREFIX + blen, (off_t)off) ==
                         (ssize_t)(BP_FRAME_PREFIX + blen)
                     ? 0
                     : -1;
            break;
        }
        off += BP_FRAME_PREFIX + blen;
    }
    close(fd);
    return rc;
}

typedef struct problems_seen {
    int n;
    char entity[8][64]; /* "" for a problem of no entity */
    char text[8][256];
} problems_seen;

static void on_problem(void *ctx, const char *entity, const char *problem) {
    problems_seen *p = ctx;
    if (p->n >= 8) return;
    snprintf(p->entity[p->n], sizeof p->entity[0], "%s", entity ? entity : "");
    snprintf(p->text[p->n], sizeof p->text[0], "%s", problem);
    p->n++;
}

/* A checkpoint with a valid CRC that describes other events (a copy's, same store id):
 * verify reports it; a damaged one is a cache miss, not a problem. */
static void test_verify_checkpoint(void) {
    const char *dir = t_dir("verify-ckpt");
    char copy[1200], from[1300], to[1300];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    t_rmdir(copy);
    bp_store *s = t_open(dir, NULL);
    for (int i = 0; i < 10; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "a", 1));
    CHECK_OK(bp_store_snapshot(s, NULL, copy));
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "source", 6));
    CHECK_OK(bp_store_close(s));
    bp_store *c = t_open(copy, NULL);
    CHECK_OK(bp_append(c, NULL, "e", "x", BP_KIND(1, 1), "copy", 4));
    CHECK_OK(bp_store_close(c));
    snprintf(from, sizeof from, "%s/index.ckpt", copy);
    snprintf(to, sizeof to, "%s/index.ckpt", dir);
    CHECK_EQ(rename(from, to), 0);
    /* read-only: the open does not rewrite it */
    s = t_open(dir, &(t_open_opts){.read_only = true});
    bp_store_open_report orep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &orep);
    CHECK(!orep.checkpoint_used); /* open is not fooled either: it scans */
    CHECK(strcmp(orep.checkpoint_note, "does not fit the segments") == 0);
    bp_iter *it;
    const bp_event *ev;
    bp_region q = BP_REGION_INIT;
    q.from_seq = 11;
    CHECK_OK(bp_query(s, &it, &q, BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->payload_len == 6 && memcmp(ev->payload, "source", 6) == 0);
    bp_iter_free(it);
    problems_seen ps = {0};
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_EQ(
        bp_store_verify(
            s, &vr, &(bp_verify_options){sizeof(bp_verify_options), NULL, NULL, on_problem, &ps}),
        BP_ECORRUPT);
    CHECK_EQ(vr.problems, 1);
    CHECK_EQ(ps.n, 1);
    CHECK(ps.entity[0][0] == '\0');
    CHECK(strstr(ps.text[0], "index.ckpt: 1 record(s) do not match the segments, the first for "
                             "seq 11") != NULL);
    CHECK_OK(bp_store_close(s));
    /* damaged: ignored */
    FILE *f = fopen(to, "r+b");
    CHECK(f != NULL);
    fputc('X', f);
    fclose(f);
    s = t_open(dir, &(t_open_opts){.read_only = true});
    CHECK_OK(bp_store_verify(
        s, &vr, &(bp_verify_options){sizeof(bp_verify_options), NULL, NULL, on_problem, &ps}));
    CHECK_OK(bp_store_close(s));
    t_rmdir(copy);
    t_rmdir(dir);
}

static void test_walk_ancestors(void) {
    const char *dir = t_dir("walk");
    bp_store *s = t_open(dir, NULL);
    bp_receipt r[5];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, &r[i], "acct:1", "bank", BP_KIND(1, 1), i == 1 ? "fail" : "ok",
                           i == 1 ? 4 : 2));
    walked w = {0};
    CHECK_OK(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 2, on_ancestor, &w));
    CHECK_EQ(w.n, 2);
    CHECK_EQ(w.clock[0], 4);
    CHECK_EQ(w.clock[1], 3);
    CHECK_EQ(w.depth[1], 2);
    memset(&w, 0, sizeof w);
    w.stop_at = 1;
    CHECK_OK(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 1);
    /* the callback's error ends the walk and is returned */
    memset(&w, 0, sizeof w);
    CHECK_FAILS(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_EDENIED,
                "callback refused");
    CHECK_EQ(w.n, 3); /* clocks 4, 3, 2 */
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &r[1].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 1);
    CHECK_EQ(w.clock[0], 1);
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &r[0].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 0); /* the first event has no ancestor */

    /* causation: order -> payment -> shipment, across entities */
    bp_receipt ro = BP_RECEIPT_INIT, rp = BP_RECEIPT_INIT, rs = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &ro, "order:1", "shop", BP_KIND(1, 1), "o", 1));
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.causation_id = &ro.event_id;
    CHECK_OK(bp_append_ex(s, &rp, "pay:1", "shop", BP_KIND(1, 2), "p", 1, &o));
    o.causation_id = &rp.event_id;
    CHECK_OK(bp_append_ex(s, &rs, "ship:1", "shop", BP_KIND(1, 3), "s", 1, &o));
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &rs.event_id, BP_WALK_CAUSATION, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 2);
    CHECK(strcmp(w.entity[0], "pay:1") == 0);
    CHECK(strcmp(w.entity[1], "order:1") == 0);
    /* a cause outside this store ends the walk */
    bp_id stranger;
    memset(&stranger, 0x42, sizeof stranger);
    o.causation_id = &stranger;
    bp_receipt rx = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &rx, "ship:2", "shop", BP_KIND(1, 3), "s", 1, &o));
    memset(&w, 0, sizeof w);
    CHECK_OK(bp_walk_ancestors(s, &rx.event_id, BP_WALK_CAUSATION, 0, on_ancestor, &w));
    CHECK_EQ(w.n, 0);

    /* bad arguments */
    CHECK_FAILS(bp_walk_ancestors(s, &stranger, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_ENOTFOUND,
                "not found");
    CHECK_FAILS(bp_walk_ancestors(s, &rs.event_id, (bp_walk_mode)7, 0, on_ancestor, &w), BP_EINVAL,
                "mode");
    CHECK_FAILS(bp_walk_ancestors(s, &rs.event_id, BP_WALK_CHAIN, 0, NULL, &w), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_walk_ancestors(NULL, &rs.event_id, BP_WALK_CHAIN, 0, on_ancestor, &w), BP_EINVAL,
                "NULL");

    /* a broken link: the stored hash of clock 3 no longer matches clock 4's prev_hash */
    char seg[1200];
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", dir);
    CHECK_OK(bp_store_sync(s));
    CHECK_EQ(tamper_frame(seg, r[2].event_hash.b, 32), 0);
    memset(&w, 0, sizeof w);
    CHECK_FAILS(bp_walk_ancestors(s, &r[4].event_id, BP_WALK_CHAIN, 0, on_ancestor, &w),
                BP_ECORRUPT, "acct:1");
    CHECK_EQ(w.n, 1); /* clock 4 was fine */
    /* verify: both broken checks (the hash of clock 3, the link from clock 4) counted, the
     * entity told once */
    problems_seen ps = {0};
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_EQ(
        bp_store_verify(
            s, &vr, &(bp_verify_options){sizeof(bp_verify_options), NULL, NULL, on_problem, &ps}),
        BP_ECORRUPT);
    CHECK_EQ(vr.problems, 2);
    CHECK_EQ(ps.n, 1);
    CHECK(strcmp(ps.entity[0], "acct:1") == 0);
    CHECK(strstr(ps.text[0], "event hash mismatch (entity 'acct:1' clock 3)") != NULL);
    bp__store_crash(s);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_diagnostics);
    RUN(test_walk_ancestors);
    RUN(test_verify_checkpoint);
    T_DONE();
}
