/* Checkpoint + rotation interplay: a segment partly covered by the checkpoint
 * and sealed later must get a footer listing all of its events, so that an
 * open without the checkpoint (footers only) sees the same store. */
#include "t.h"
#include "store/store_impl.h"
#include "bp_testing.h"

#include <sys/stat.h>

/* 8 KiB segments, appends synced at close only (BP_NO_SYNC); and the same read-only. */
static const t_open_opts SMALL = {.segment_size = 8192, .durability = {.mode = BP_DUR_NONE}};
static const t_open_opts SMALL_RO = {
    .segment_size = 8192, .durability = {.mode = BP_DUR_NONE}, .read_only = true};

static void append_n(bp_store *s, int n, int base) {
    char p[64];
    for (int i = 0; i < n; i++) {
        int len = snprintf(p, sizeof p, "event-%d", base + i);
        if (bp_append(s, NULL, (base + i) % 3 ? "e:x" : "e:y", "sc", 0x1001, p, (size_t)len))
            fprintf(stderr, "append: %s\n", bp_last_error());
    }
}

static void test_partly_covered_segment_gets_full_footer(void) {
    const char *dir = t_dir("ckpt");
    bp_store *s = t_open(dir, &SMALL);
    CHECK(s);
    append_n(s, 20, 0); /* stays in segment 1 */
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &SMALL); /* checkpoint covers part of segment 1 */
    CHECK(s);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    append_n(s, 400, 20); /* rotates: segment 1 is sealed now */
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments > 2);
    CHECK_OK(bp_store_close(s));
    char path[1200];
    snprintf(path, sizeof path, "%s/index.ckpt", dir);
    CHECK_EQ(unlink(path), 0);
    s = t_open(dir, &SMALL_RO);
    CHECK(s);
    bp_store_open_report_get(s, &rep);
    CHECK(!rep.checkpoint_used);
    CHECK(rep.footers_used >= 2);
    CHECK_EQ(rep.events, 420);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 420);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "e:y", BP_READ_FULL));
    const bp_event *ev;
    uint64_t k = 0;
    while (bp_iter_next(it, &ev) == BP_OK)
        CHECK_EQ(ev->clock, ++k);
    CHECK_EQ(k, 140);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* A crash right after creating the next segment file leaves it empty or with a
 * torn header: open sets it aside; anything longer is corruption. */
static void test_unborn_tail_segment(void) {
    const char *dir = t_dir("unborn");
    bp_store *s = t_open(dir, &SMALL);
    CHECK(s);
    append_n(s, 10, 0);
    CHECK_OK(bp_store_close(s));
    char path[1200];
    snprintf(path, sizeof path, "%s/segments/000002.fbat", dir);
    write_file(path, "FBAT\0\1", 6);
    s = t_open(dir, &SMALL);
    CHECK(s);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 10);
    append_n(s, 5, 10);
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &SMALL_RO);
    CHECK(s);
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 15);
    CHECK_OK(bp_store_close(s));
    /* a segment with more than a header's worth of garbage is not "unborn" */
    snprintf(path, sizeof path, "%s/segments/000003.fbat", dir);
    char junk[100];
    memset(junk, 'x', sizeof junk);
    write_file(path, junk, sizeof junk);
    bp_store *s2 = NULL;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    CHECK_EQ(bp_store_open(&s2, dir, &o), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "000003.fbat") != NULL);
    CHECK(s2 == NULL);
    t_rmdir(dir);
}

static long file_size(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The checkpoint of a clean close covers the active segment only: the sealed ones are
 * loaded from their footers, nothing is scanned, and the file does not grow with the
 * store. Chains, clocks and idempotency keys come through. */
static void test_tail_checkpoint(void) {
    const char *dir = t_dir("ckpt-tail");
    bp_store *s = t_open(dir, &SMALL);
    CHECK(s);
    bp_append_options ao = BP_APPEND_OPTIONS_INIT;
    ao.idempotency_key = "early-key";
    bp_receipt first = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &first, "e:y", "sc", 0x1001, "k", 1, &ao)); /* in segment 1 */
    append_n(s, 419, 1);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments >= 3);
    CHECK_OK(bp_store_close(s));
    long ck = file_size(dir, "index.ckpt");
    CHECK(ck > 0 && ck < 420 * BP_IREC_SIZE / 2); /* not every event's record */
    s = t_open(dir, &SMALL);
    CHECK(s);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    CHECK_EQ(rep.footers_used, st.segments - 1);
    CHECK_EQ(rep.frames_scanned, 0);
    CHECK_EQ(rep.events, 420);
    bp_receipt again = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &again, "e:y", "sc", 0x1001, "k", 1, &ao));
    CHECK(again.replayed);
    CHECK_EQ(again.global_seq, first.global_seq);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "e:y", BP_READ_FULL));
    const bp_event *ev;
    uint64_t k = 0;
    bp_hash prev;
    memset(&prev, 0, sizeof prev);
    while (bp_iter_next(it, &ev) == BP_OK) {
        CHECK_EQ(ev->clock, ++k);
        CHECK(memcmp(ev->prev_hash.b, prev.b, 32) == 0);
        prev = ev->event_hash;
    }
    bp_iter_free(it);
    CHECK_EQ(k, 140);
    uint64_t clock;
    bp_hash head;
    CHECK_OK(bp_entity_head(s, &clock, &head, "e:y"));
    CHECK_EQ(clock, 140);
    CHECK(memcmp(head.b, prev.b, 32) == 0);
    /* appends continue the chain */
    CHECK_OK(bp_append(s, NULL, "e:y", "sc", 0x1001, "z", 1));
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 421);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A checkpoint covering every event from global_seq 1 (what builds before the tail
 * checkpoint wrote) is still used as it is. */
static void test_full_checkpoint_still_read(void) {
    const char *dir = t_dir("ckpt-full");
    bp_store *s = t_open(dir, &SMALL);
    CHECK(s);
    append_n(s, 420, 0);
    /* write a full checkpoint the way older builds did, then abandon the handle */
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp__store_checkpoint_full(s));
    bp__store_crash(s);
    s = t_open(dir, &SMALL_RO);
    CHECK(s);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    CHECK_EQ(rep.footers_used, 0);
    CHECK_EQ(rep.frames_scanned, 0);
    CHECK_EQ(rep.events, 420);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_tail_checkpoint);
    RUN(test_full_checkpoint_still_read);
    RUN(test_unborn_tail_segment);
    RUN(test_partly_covered_segment_gets_full_footer);
    T_DONE();
}
