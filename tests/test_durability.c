/* The durability modes do what their receipts say: fsyncs are counted at the
 * platform layer (libgit2-style) for each mode. */
#include "t.h"
#include "bp_testing.h"
#include "platform/platform.h"

static bp_store *open_mode(const char *dir, bp_durability d, bp_fault *f) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = d;
    o.fault = f;
    bp_store *s = NULL;
    if (bp_store_open(&s, dir, &o) != BP_OK) fprintf(stderr, "open: %s\n", bp_last_error());
    return s;
}

static uint64_t syncs(bp_fault *f) {
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->syncs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void run_mode(bp_durability d, int n, uint64_t *fsyncs, int *durable_receipts) {
    const char *dir = t_dir("dur");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = open_mode(dir, d, &f);
    *fsyncs = UINT64_MAX;
    if (!s) return;
    uint64_t before = syncs(&f);
    *durable_receipts = 0;
    for (int i = 0; i < n; i++) {
        bp_receipt r;
        if (bp_append(s, &r, "e:1", "s", 0x1001, "x", 1) != BP_OK) return;
        if (r.durability == BP_DUR_SYNC) (*durable_receipts)++;
    }
    *fsyncs = syncs(&f) - before;
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
    bp_store *s = open_mode(dir, BP_DURABLE_EVERY(0, 20), &f);
    CHECK(s);
    uint64_t before = syncs(&f);
    bp_receipt r;
    CHECK_OK(bp_append(s, &r, "e:1", "s", 0x1001, "x", 1));
    CHECK_EQ(r.durability, BP_DUR_EVERY);
    /* wait (up to 10 s, the bound is 20 ms) for the flusher's sync */
    for (int i = 0; i < 1000 && syncs(&f) == before; i++)
        usleep(10000);
    CHECK_EQ(syncs(&f) - before, 1);
    bp__store_crash(s);
    bp_fault_power_loss(&f);
    bp_fault_destroy(&f);
    s = open_mode(dir, BP_DURABLE, NULL);
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
    bp_store *s = open_mode(dir, BP_NO_SYNC, &f);
    CHECK(s);
    uint64_t before = syncs(&f);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_DURABLE;
    bp_receipt r;
    CHECK_OK(bp_append_ex(s, &r, "e:1", "s", 0x1001, "x", 1, &o));
    CHECK_EQ(r.durability, BP_DUR_SYNC);
    CHECK_EQ(syncs(&f) - before, 1);
    CHECK_OK(bp_append(s, &r, "e:1", "s", 0x1001, "x", 1));
    CHECK_EQ(r.durability, BP_DUR_NONE);
    CHECK_EQ(syncs(&f) - before, 1);
    /* a batch is always synced, whatever the store default */
    bp_batch_item it[2] = {{"e:1", "s", 0x1001, "a", 1, NULL}, {"e:2", "s", 0x1001, "b", 1, NULL}};
    bp_receipt rs[2];
    CHECK_OK(bp_append_batch(s, rs, it, 2));
    CHECK_EQ(rs[0].durability, BP_DUR_SYNC);
    CHECK_EQ(syncs(&f) - before, 2);
    CHECK_OK(bp_store_sync(s));
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_durable_syncs_every_append);
    RUN(test_no_sync_never_syncs);
    RUN(test_every_n_syncs_every_n);
    RUN(test_override);
    RUN(test_every_ms_syncs_when_idle);
    T_DONE();
}
