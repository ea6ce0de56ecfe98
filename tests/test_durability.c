/* The durability modes do what their receipts say: fsyncs are counted at the
 * platform layer (libgit2-style) for each mode. */
#include "t.h"
#include "bp_testing.h"
#include "platform/platform.h"
#include "format/format.h"

#include <sys/stat.h>

static void run_mode(bp_durability d, int n, uint64_t *fsyncs, int *durable_receipts) {
    const char *dir = t_dir("dur");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = d, .fault = &f});
    *fsyncs = UINT64_MAX;
    if (!s) return;
    uint64_t before = t_fault_syncs(&f);
    *durable_receipts = 0;
    for (int i = 0; i < n; i++) {
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append(s, &r, "e:1", "s", 0x1001, "x", 1) != BP_OK) return;
        if (r.durability == BP_DUR_SYNC) (*durable_receipts)++;
    }
    *fsyncs = t_fault_syncs(&f) - before;
    bp_store_close(s);
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

static void test_durable_syncs_every_append(void) {
    uint64_t n;
    int d;
    run_mode(BP_DURABLE, 50, &n, &d);
    CHECK_EQ(n, 50);
    CHECK_EQ(d, 50);
}

static void test_no_sync_never_syncs(void) {
    uint64_t n;
    int d;
    run_mode(BP_NO_SYNC, 50, &n, &d);
    CHECK_EQ(n, 0);
    CHECK_EQ(d, 0);
}

static void test_every_n_syncs_every_n(void) {
    uint64_t n;
    int d;
    run_mode(BP_DURABLE_EVERY(10, 0), 100, &n, &d);
    CHECK_EQ(n, 10);
    CHECK_EQ(d, 10);
}

/* The ms bound holds when appends stop: a background sync happens without
 * any further call, and the event survives a power cut after it. */
static void test_every_ms_syncs_when_idle(void) {
    const char *dir = t_dir("dur-ms");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE_EVERY(0, 20), .fault = &f});
    CHECK(s);
    uint64_t before = t_fault_syncs(&f);
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "e:1", "s", 0x1001, "x", 1));
    CHECK_EQ(r.durability, BP_DUR_EVERY);
    /* wait (up to 10 s, the bound is 20 ms) for the flusher's sync */
    for (int i = 0; i < 1000 && t_fault_syncs(&f) == before; i++)
        usleep(10000);
    CHECK_EQ(t_fault_syncs(&f) - before, 1);
    bp__store_crash(s);
    bp_fault_power_loss(&f);
    bp_fault_destroy(&f);
    s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r.event_id));
    bp_event_free(ev);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* per-append override of the store default */
static void test_override(void) {
    const char *dir = t_dir("dur-ovr");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_NO_SYNC, .fault = &f});
    CHECK(s);
    uint64_t before = t_fault_syncs(&f);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_DURABLE;
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, "e:1", "s", 0x1001, "x", 1, &o));
    CHECK_EQ(r.durability, BP_DUR_SYNC);
    CHECK_EQ(t_fault_syncs(&f) - before, 1);
    CHECK_OK(bp_append(s, &r, "e:1", "s", 0x1001, "x", 1));
    CHECK_EQ(r.durability, BP_DUR_NONE);
    CHECK_EQ(t_fault_syncs(&f) - before, 1);
    /* a batch without options is synced, whatever the store default */
    bp_batch_item it[2] = {{"e:1", "s", 0x1001, "a", 1, NULL}, {"e:2", "s", 0x1001, "b", 1, NULL}};
    bp_receipt rs[2];
    t_receipts(rs, sizeof rs / sizeof rs[0]);
    CHECK_OK(bp_append_batch(s, rs, it, 2));
    CHECK_EQ(rs[0].durability, BP_DUR_SYNC);
    CHECK_EQ(t_fault_syncs(&f) - before, 2);
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

static uint64_t events_of(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    return bp_store_stats_get(s, &st) == BP_OK ? st.events : UINT64_MAX;
}

/* A batch takes a durability like an append (bp_append_batch_ex): synced or not, counted at the
 * platform layer, and its receipts say which. */
static void test_batch_durability(void) {
    const char *dir = t_dir("dur-batch");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_NO_SYNC, .fault = &f});
    CHECK(s);
    if (!s) return;
    bp_batch_item it[2] = {{"e:1", "s", 0x1001, "a", 1, NULL}, {"e:2", "s", 0x1001, "b", 1, NULL}};
    bp_receipt rs[2];
    t_receipts(rs, sizeof rs / sizeof rs[0]);
    uint64_t before = t_fault_syncs(&f);
    /* bp_append_batch, NULL options and BP_BATCH_OPTIONS_INIT: durable, whatever the store's */
    CHECK_OK(bp_append_batch(s, rs, it, 2));
    CHECK_EQ(rs[0].durability, BP_DUR_SYNC);
    CHECK_EQ(t_fault_syncs(&f) - before, 1);
    CHECK_OK(bp_append_batch_ex(s, rs, it, 2, NULL));
    CHECK_EQ(rs[1].durability, BP_DUR_SYNC);
    CHECK_EQ(t_fault_syncs(&f) - before, 2);
    bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
    CHECK_OK(bp_append_batch_ex(s, rs, it, 2, &bo));
    CHECK_EQ(rs[0].durability, BP_DUR_SYNC);
    CHECK_EQ(t_fault_syncs(&f) - before, 3);
    /* BP_NO_SYNC: no sync, and visible at once */
    bo.durability = BP_NO_SYNC;
    for (int i = 0; i < 10; i++) {
        CHECK_OK(bp_append_batch_ex(s, rs, it, 2, &bo));
        CHECK_EQ(rs[0].durability, BP_DUR_NONE);
        CHECK_EQ(rs[1].durability, BP_DUR_NONE);
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &rs[1].event_id));
        bp_event_free(ev);
    }
    CHECK_EQ(t_fault_syncs(&f) - before, 3);
    /* one item, too (no batch markers: a single append) */
    CHECK_OK(bp_append_batch_ex(s, rs, it, 1, &bo));
    CHECK_EQ(rs[0].durability, BP_DUR_NONE);
    CHECK_EQ(t_fault_syncs(&f) - before, 3);
    /* BP_DUR_DEFAULT: the store's (BP_NO_SYNC here) */
    bo.durability.mode = BP_DUR_DEFAULT;
    CHECK_OK(bp_append_batch_ex(s, rs, it, 2, &bo));
    CHECK_EQ(rs[0].durability, BP_DUR_NONE);
    CHECK_EQ(t_fault_syncs(&f) - before, 3);
    CHECK_OK(bp_store_sync(s));
    CHECK_EQ(t_fault_syncs(&f) - before, 4);
    /* BP_DURABLE_EVERY(5, 0): the batch that reaches 5 unsynced events syncs */
    bo.durability = BP_DURABLE_EVERY(5, 0);
    int synced_at = -1;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bp_append_batch_ex(s, rs, it, 2, &bo));
        if (rs[0].durability == BP_DUR_SYNC && synced_at < 0) synced_at = i;
        CHECK_EQ(rs[0].durability, rs[1].durability);
        if (i < 2) CHECK_EQ(rs[0].durability, BP_DUR_EVERY);
    }
    CHECK_EQ(synced_at, 2);
    CHECK_EQ(t_fault_syncs(&f) - before, 5);
    /* bad options: refused before anything is written */
    uint64_t n = events_of(s);
    bo = (bp_batch_options)BP_BATCH_OPTIONS_INIT;
    bo.struct_size = 99;
    CHECK_FAILS(bp_append_batch_ex(s, rs, it, 2, &bo), BP_EINVAL,
                "bp_batch_options.struct_size is 99");
    bo.struct_size = 0;
    CHECK_FAILS(bp_append_batch_ex(s, rs, it, 2, &bo), BP_EINVAL,
                "bp_batch_options.struct_size is 0");
    bo = (bp_batch_options)BP_BATCH_OPTIONS_INIT;
    bo.durability.mode = (bp_durability_mode)7;
    CHECK_FAILS(bp_append_batch_ex(s, rs, it, 2, &bo), BP_EINVAL, "unknown durability mode 7");
    CHECK_FAILS(bp_append_batch_ex(NULL, rs, it, 2, NULL), BP_EINVAL, "NULL store");
    CHECK_EQ(events_of(s), n);
    CHECK_EQ(t_fault_syncs(&f) - before, 5);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* A power loss takes back the unsynced batches since the last sync, each whole; the durable
 * batch before them stays. */
static void test_batch_power_loss(void) {
    const char *dir = t_dir("dur-batch-power");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE, .fault = &f});
    CHECK(s);
    if (!s) return;
    bp_batch_item it[3] = {{"e:1", "s", 0x1001, "a", 1, NULL},
                           {"e:2", "s", 0x1001, "b", 1, NULL},
                           {"e:1", "s", 0x1001, "c", 1, NULL}};
    bp_receipt durable[3] = {BP_RECEIPT_INIT}, lost[3] = {BP_RECEIPT_INIT};
    t_receipts(durable, sizeof durable / sizeof durable[0]);
    t_receipts(lost, sizeof lost / sizeof lost[0]);
    bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
    CHECK_OK(bp_append_batch_ex(s, durable, it, 3, &bo));
    bo.durability = BP_NO_SYNC;
    for (int i = 0; i < 4; i++)
        CHECK_OK(bp_append_batch_ex(s, lost, it, 3, &bo));
    CHECK_EQ(events_of(s), 15);
    bp__store_crash(s);
    CHECK(bp_fault_power_loss(&f) > 0);
    bp_fault_destroy(&f);
    s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    if (!s) return;
    CHECK_EQ(events_of(s), 3);
    for (int k = 0; k < 3; k++) {
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &durable[k].event_id));
        bp_event_free(ev);
        CHECK_EQ(bp_get(s, &ev, &lost[k].event_id), BP_ENOTFOUND);
    }
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static long long path_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Where a segment file's frames end (the writer fills zeros ahead of them), or -1. */
static long long frames_end_of(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    long long pos = BP_SEG_HEADER_SIZE, size = path_size(path);
    uint8_t pre[BP_FRAME_PREFIX];
    while (pos + BP_FRAME_PREFIX <= size && fseek(fp, (long)pos, SEEK_SET) == 0 &&
           fread(pre, 1, sizeof pre, fp) == sizeof pre) {
        uint32_t body = bp_get_be32(pre);
        if (!body || pos + BP_FRAME_PREFIX + body > size) break;
        pos += BP_FRAME_PREFIX + body;
    }
    fclose(fp);
    return pos;
}

/* Durable appends fill zeros ahead of the newest segment's frames (FORMAT.md "Zeros ahead of
 * the frames"): a crash leaves them and recovery cuts them without quarantining or counting
 * them; a clean close and sealing leave none. */
static void test_zero_tail(void) {
    const char *dir = t_dir("dur-zeros");
    char seg[1200], q[1200];
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", dir);
    snprintf(q, sizeof q, "%s/quarantine", dir);
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    if (!s) return;
    bp_receipt r[20];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 20; i++)
        CHECK_OK(bp_append(s, &r[i], "e:1", "s", 0x1001, "payload", 7));
    long long end = frames_end_of(seg);
    CHECK(path_size(seg) >= end + (long long)(128u << 10)); /* zeros ahead */
    bp__store_crash(s);
    CHECK(path_size(seg) > end); /* what a crash leaves */
    s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    if (!s) return;
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK_EQ(rep.events, 20);
    CHECK_EQ(rep.bytes_cut, 0);
    CHECK_EQ(rep.frames_cut, 0);
    CHECK_EQ(path_size(q), -1);    /* nothing quarantined */
    CHECK_EQ(path_size(seg), end); /* the zeros cut at open */
    for (int i = 0; i < 20; i++) {
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &r[i].event_id));
        bp_event_free(ev);
    }
    bp_receipt more = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &more, "e:1", "s", 0x1001, "after", 5));
    CHECK_EQ(more.clock, 21);
    CHECK(path_size(seg) > frames_end_of(seg)); /* filled ahead again */
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(path_size(seg), frames_end_of(seg)); /* a clean close leaves no zeros */
    t_rmdir(dir);

    /* sealing: the footer ends the file (its trailer is read at the end) */
    dir = t_dir("dur-zeros-seal");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.segment_size = 64u << 10;
    CHECK_OK(bp_store_open(&s, dir, &o));
    if (!s) return;
    char big[3000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 60; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, big, sizeof big));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments >= 2);
    for (uint32_t k = 1; k < st.segments; k++) {
        char p[1200], tail[4];
        snprintf(p, sizeof p, "%s/segments/%06u.fbat", dir, k);
        FILE *fp = fopen(p, "rb");
        CHECK(fp && fseek(fp, -4, SEEK_END) == 0 && fread(tail, 1, 4, fp) == 4 &&
              memcmp(tail, "SEAL", 4) == 0);
        if (fp) fclose(fp);
    }
    bp__store_crash(s);
    CHECK_OK(bp_store_open(&s, dir, &o));
    if (!s) return;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 60);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* /proc/self/io write_bytes: the bytes this process made dirty for the disk (0 where the
 * kernel does not count them). */
static long long io_write_bytes(void) {
    FILE *fp = fopen("/proc/self/io", "r");
    if (!fp) return 0;
    char line[256];
    long long v = 0, x;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "write_bytes: %lld", &x) == 1) v = x;
    fclose(fp);
    return v;
}

/* The zeros ahead cost each durable append no more than the pages it dirties: a write of
 * them that left one large page-cache folio had every fdatasync write back 1 MiB. Counted
 * in bytes, not time: 400 durable appends of 100 bytes (zeros written ahead included). */
static void test_zero_tail_write_bytes(void) {
    const char *dir = t_dir("dur-zeros-io");
    bp_store *s = t_open(dir, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    if (!s) return;
    CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, "first", 5));
    long long w0 = io_write_bytes();
    char payload[100];
    memset(payload, 'p', sizeof payload);
    for (int i = 0; i < 400; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, payload, sizeof payload));
    long long per = (io_write_bytes() - w0) / 400;
    CHECK(per <= 3 * 4096); /* a page or two each, plus the zeros: about 4.6 KiB here */
    if (per > 3 * 4096) fprintf(stderr, "  %lld bytes written per durable append\n", per);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* An import writes the export's batches without a sync each (whole: one write each, with their
 * batch markers) and syncs once, at bp_import_end. */
static void test_import_syncs_at_the_end(void) {
    const char *dir = t_dir("dur-import");
    char src[1100], dst[1100];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    bp_store *s = t_open(src, &(t_open_opts){.durability = BP_NO_SYNC});
    CHECK(s);
    if (!s) return;
    bp_batch_item it[3] = {{"e:1", "s", 0x1001, "a", 1, NULL},
                           {"e:2", "s", 0x1001, "b", 1, NULL},
                           {"e:1", "s", 0x1001, "c", 1, NULL}};
    for (int i = 0; i < 40; i++) /* 40 durable batches, and single appends between them */
        if (bp_append_batch(s, NULL, it, 3) || bp_append(s, NULL, "e:3", "s", 0x1001, "d", 1))
            CHECK(false);
    char *text = t_export(s, false);
    CHECK(text != NULL);
    CHECK_OK(bp_store_close(s));
    if (!text) return;
    bp_fault f;
    bp_fault_init(&f);
    s = t_open(dst, &(t_open_opts){.durability = BP_DURABLE, .fault = &f});
    CHECK(s);
    bp_importer *imp = NULL;
    CHECK_OK(bp_import_begin(s, &imp));
    uint64_t before = t_fault_syncs(&f);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        CHECK_OK(bp_import_line(imp, p, len));
        p += len;
    }
    CHECK_EQ(t_fault_syncs(&f) - before, 0);
    /* written (and visible) before the sync; but the last line, held for the next group of
     * standalone lines */
    CHECK_EQ(events_of(s), 159);
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    CHECK_OK(bp_import_end(imp, &rep));
    CHECK_EQ(rep.imported, 160);
    CHECK_EQ(t_fault_syncs(&f) - before, 1);
    bp__store_crash(s); /* durable now: a power loss keeps it all */
    bp_fault_power_loss(&f);
    bp_fault_destroy(&f);
    s = t_open(dst, &(t_open_opts){.durability = BP_DURABLE});
    CHECK(s);
    if (s) {
        char *again = t_export(s, false);
        CHECK(again != NULL && strcmp(again, text) == 0);
        free(again);
        CHECK_OK(bp_store_close(s));
    }
    free(text);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_durable_syncs_every_append);
    RUN(test_no_sync_never_syncs);
    RUN(test_every_n_syncs_every_n);
    RUN(test_override);
    RUN(test_every_ms_syncs_when_idle);
    RUN(test_batch_durability);
    RUN(test_batch_power_loss);
    RUN(test_zero_tail);
    RUN(test_zero_tail_write_bytes);
    RUN(test_import_syncs_at_the_end);
    T_DONE();
}
