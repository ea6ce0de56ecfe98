/* Fault test: the platform layer fails the Nth write, fsync, rename, file
 * open or mmap (for every N a clean run reaches), short-writes, or reports ENOSPC
 * (a failed mmap is no error: reads fall back to pread);
 * then it drops everything not fsynced (a power cut). In every case:
 *   - the failing call reports BP_EIO with a message naming what failed;
 *   - the store stays failed: later appends and syncs return BP_EIO
 *     carrying the original error, while reads go on;
 *   - a reopen without faults succeeds and gives a consistent prefix: verify
 *     is clean, every event acknowledged durable is there byte-identical, and
 *     so is every event acknowledged before the last durable one;
 *   - the reopened store accepts appends again. */
#include "t.h"
#include "t_six.h"
#include "bp_testing.h"
#include "platform/platform.h"

#include <dirent.h>

#define OPS 60

typedef struct ack {
    bp_id id;
    bp_hash hash;
    uint64_t seq;
    int op; /* payload is a function of op and the item index */
    bool durable;
} ack;

typedef struct outcome {
    bool open_failed;
    bool append_failed;
    int n_acks;
    ack acks[OPS * 3];
} outcome;

static size_t payload_of(int op, int k, char *buf) {
    return (size_t)snprintf(
        buf, 160, "op %d item %d %.*s", op, k, (op * 7 + k) % 100,
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxx");
}

/* The stores of these tests: 8 KiB segments, so that rotations (seal: footer, sync, dir sync;
 * create) happen; with the open event. */
static const t_open_opts OPTS = {.segment_size = 8192, .open_event = true};

static void add_ack(outcome *out, const bp_receipt *r, int op) {
    ack *a = &out->acks[out->n_acks++];
    a->id = r->event_id;
    a->hash = r->event_hash;
    a->seq = r->global_seq;
    a->op = op;
    a->durable = r->durability == BP_DUR_SYNC;
}

/* Run the workload against a store whose platform layer is f. Checks the
 * fail-stop contract at the first failure. crash: abandon the handle instead
 * of closing it. */
static void workload(const char *dir, bp_fault *f, bool crash, outcome *out) {
    memset(out, 0, sizeof *out);
    t_open_opts o = OPTS;
    o.fault = f;
    bp_store *s = NULL;
    bp_status rc = t_open_try(&s, dir, &o);
    if (rc != BP_OK) {
        CHECK(rc == BP_EIO);
        CHECK(strlen(bp_last_error()) > 0);
        CHECK(s == NULL);
        out->open_failed = true;
        return;
    }
    char buf[4][160];
    for (int op = 0; op < OPS; op++) {
        bp_receipt r[3];
        t_receipts(r, sizeof r / sizeof r[0]);
        int n = op % 10 == 9 ? 3 : 1;
        if (n == 3) {
            bp_batch_item it[3];
            for (int k = 0; k < 3; k++)
                it[k] = (bp_batch_item){k == 1 ? "acct:b" : "acct:a", "bank", 0x1001, buf[k],
                                        payload_of(op, k, buf[k]),    NULL};
            if (op % 20 == 19) { /* the same through a visibility fence */
                bp_fence *fe;
                bp_ticket *t[3] = {NULL, NULL, NULL};
                CHECK_OK(bp_fence_begin(s, &fe));
                for (int k = 0; k < 3; k++)
                    CHECK_OK(bp_fence_append(fe, &t[k], it[k].entity, it[k].scope, it[k].kind,
                                             it[k].payload, it[k].len, NULL));
                rc = bp_fence_commit(fe);
                for (int k = 0; k < 3; k++) {
                    bp_status trc = bp_ticket_wait(t[k], &r[k], 0);
                    CHECK_EQ(trc, rc); /* every ticket says what the commit said */
                    bp_ticket_free(t[k]);
                }
                bp_fence_free(fe); /* bp_last_error: the last ticket's, the commit's message */
            } else {
                rc = bp_append_batch(s, r, it, 3);
            }
        } else {
            bp_append_options ao = BP_APPEND_OPTIONS_INIT;
            if (op % 7 == 3) ao.durability = BP_NO_SYNC;
            rc = bp_append_ex(s, r, op % 2 ? "acct:a" : "acct:c", "bank", 0x1002, buf[0],
                              payload_of(op, 0, buf[0]), &ao);
        }
        if (rc == BP_OK) {
            for (int k = 0; k < n; k++)
                add_ack(out, &r[k], op);
            continue;
        }
        /* the first failure: an I/O error naming the store */
        CHECK_EQ(rc, BP_EIO);
        CHECK(strstr(bp_last_error(), dir) != NULL);
        const char *why = strerror(f->fail_errno);
        CHECK(strstr(bp_last_error(), why) != NULL);
        out->append_failed = true;
        /* fail-stop: later writes fail with the original error, reads go on */
        CHECK_EQ(bp_append(s, NULL, "acct:a", "bank", 0x1002, "x", 1), BP_EIO);
        CHECK(strstr(bp_last_error(), "fail-stopped") != NULL);
        CHECK(strstr(bp_last_error(), why) != NULL); /* the original error */
        CHECK_EQ(bp_store_sync(s), BP_EIO);
        bp_store_stats st = BP_STORE_STATS_INIT;
        CHECK_OK(bp_store_stats_get(s, &st));
        CHECK(st.failed);
        if (out->n_acks) {
            bp_event *ev;
            CHECK_OK(bp_get(s, &ev, &out->acks[0].id));
            bp_event_free(ev);
        }
        break;
    }
    /* read back every acknowledged event (maps each segment: the mmap sweep fails those) */
    for (int i = 0; !out->append_failed && i < out->n_acks; i++) {
        bp_event *ev;
        CHECK_OK(bp_get(s, &ev, &out->acks[i].id));
        if (!ev) continue;
        CHECK_EQ(ev->global_seq, out->acks[i].seq);
        CHECK(memcmp(ev->event_hash.b, out->acks[i].hash.b, 32) == 0);
        bp_event_free(ev);
    }
    if (crash) {
        bp__store_crash(s);
    } else {
        rc = bp_store_close(s);
        if (out->append_failed)
            CHECK_EQ(rc, BP_EIO);
        else
            CHECK(rc == BP_OK || rc == BP_EIO); /* the close's own sync/checkpoint may fail */
    }
}

/* Reopen without faults and check the consistent-prefix contract. */
static void check_reopen(const char *dir, const outcome *out) {
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &OPTS));
    /* the writable open wrote every sealed segment's index file that a crash or fault left
     * missing or stale; verify below checks each against the frames */
    CHECK(t_six_all_current(dir));
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status vrc = bp_store_verify(s, &vr, NULL);
    if (vrc) fprintf(stderr, "verify: %s\n", vr.first_problem);
    CHECK_OK(vrc);
    uint64_t last_durable = 0;
    for (int i = 0; i < out->n_acks; i++)
        if (out->acks[i].durable && out->acks[i].seq > last_durable)
            last_durable = out->acks[i].seq;
    char buf[160];
    for (int i = 0; i < out->n_acks; i++) {
        const ack *a = &out->acks[i];
        bp_event *ev = NULL;
        bp_status rc = bp_get(s, &ev, &a->id);
        if (a->seq <= last_durable) {
            if (rc) fprintf(stderr, "acknowledged seq %llu lost\n", (unsigned long long)a->seq);
            CHECK_OK(rc);
        }
        if (rc == BP_ENOTFOUND) continue;
        CHECK_OK(rc);
        int k = ev->batch_count ? (int)ev->batch_index : 0;
        size_t len = payload_of(a->op, k, buf);
        bool same = ev->global_seq == a->seq && memcmp(ev->event_hash.b, a->hash.b, 32) == 0 &&
                    ev->payload_len == len && memcmp(ev->payload, buf, len) == 0;
        if (!same)
            fprintf(stderr, "ack %d seq %llu op %d: got seq %llu len %zu want %zu '%.*s'\n", i,
                    (unsigned long long)a->seq, a->op, (unsigned long long)ev->global_seq,
                    ev->payload_len, len, (int)ev->payload_len, (const char *)ev->payload);
        bp_event_free(ev);
        CHECK(same);
    }
    /* writable again */
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "acct:a", "bank", 0x1002, "again", 5));
    CHECK_OK(bp_store_close(s));
    t_check_loss_refused(dir, &OPTS);
}

typedef enum { F_WRITE, F_SYNC, F_RENAME, F_OPEN, F_SHORT, F_MMAP } fault_kind;
static const char *kind_name[] = {"write", "sync", "rename", "open", "short write", "mmap"};

/* Count the calls of a clean run so every N up to it can be failed. */
static void clean_counts(uint64_t counts[6]) {
    const char *dir = t_dir("fault-clean");
    bp_fault f;
    bp_fault_init(&f);
    outcome *out = malloc(sizeof *out);
    workload(dir, &f, false, out);
    CHECK(!out->append_failed && !out->open_failed);
    counts[F_WRITE] = counts[F_SHORT] = f.writes;
    counts[F_SYNC] = f.syncs;
    counts[F_RENAME] = f.renames;
    counts[F_OPEN] = f.opens;
    counts[F_MMAP] = f.mmaps;
    bp_fault_destroy(&f);
    free(out);
    t_rmdir(dir);
}

static void sweep(fault_kind kind, int err, bool sticky, uint64_t step) {
    uint64_t counts[6] = {0};
    clean_counts(counts);
    CHECK(counts[kind] > 0);
    outcome *out = malloc(sizeof *out);
    int tripped_runs = 0, runs = 0, failures0 = t_failures;
    /* few renames and opens: run each N both crashing and closing */
    bool both = kind == F_RENAME || kind == F_OPEN;
    for (uint64_t i = 2; i <= 2 * (counts[kind] + 1) && t_failures == failures0;
         i += both ? 1 : 2 * step) {
        uint64_t n = i / 2;
        const char *dir = t_dir("fault");
        bp_fault f;
        bp_fault_init(&f);
        f.fail_errno = err;
        f.sticky = sticky;
        switch (kind) {
        case F_WRITE:
            f.fail_write_at = n;
            break;
        case F_SYNC:
            f.fail_sync_at = n;
            break;
        case F_RENAME:
            f.fail_rename_at = n;
            break;
        case F_OPEN:
            f.fail_open_at = n;
            break;
        case F_SHORT:
            f.short_write_at = n;
            break;
        case F_MMAP: /* not an error: reads and recovery fall back to pread */
            f.fail_mmap_at = n;
            break;
        }
        bool crash = both ? i % 2 == 1 : n % 2 == 0;
        workload(dir, &f, crash, out);
        if (f.tripped) tripped_runs++;
        runs++;
        bp_fault_power_loss(&f); /* and then the power goes */
        bp_fault_destroy(&f);
        if (t_failures != failures0) {
            fprintf(stderr, "  failed at %s #%llu (%s)\n", kind_name[kind], (unsigned long long)n,
                    crash ? "crash" : "close");
            break;
        }
        check_reopen(dir, out);
        if (t_failures != failures0) {
            fprintf(stderr, "  reopen failed after %s #%llu (%s)\n", kind_name[kind],
                    (unsigned long long)n, crash ? "crash" : "close");
            break;
        }
        t_rmdir(dir);
    }
    fprintf(stderr, "  %s faults: %d runs, %d tripped\n", kind_name[kind], runs, tripped_runs);
    CHECK(tripped_runs >= runs - 3); /* (almost) every N up to the clean count was reached */
    free(out);
}

static void test_nth_write(void) {
    sweep(F_WRITE, EIO, false, 1);
}
static void test_nth_sync(void) {
    sweep(F_SYNC, EIO, false, 1);
}
static void test_nth_rename(void) {
    sweep(F_RENAME, EIO, false, 1);
}
static void test_nth_open(void) {
    sweep(F_OPEN, EIO, false, 1);
}
static void test_short_write(void) {
    sweep(F_SHORT, EIO, false, 1);
}
static void test_nth_mmap(void) {
    sweep(F_MMAP, EIO, false, 1);
}
static void test_enospc_sticky(void) {
    sweep(F_WRITE, ENOSPC, true, 3);
}

static int occurrences(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ENOSPC is reported as such, with the path, and the store's directory is named once. */
static void test_enospc_message(void) {
    const char *dir = t_dir("fault-nospc");
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts o = OPTS;
    o.fault = &f;
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    f.fail_errno = ENOSPC;
    f.fail_write_at = f.writes + 2; /* a full disk: from the write after the first append's */
    f.sticky = true;
    CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, "a", 1));
    CHECK_EQ(bp_append(s, NULL, "e:1", "s", 0x1001, "b", 1), BP_EIO);
    CHECK(strstr(bp_last_error(), "No space left on device") != NULL);
    CHECK(strstr(bp_last_error(), "segment") != NULL);
    CHECK_EQ(occurrences(bp_last_error(), dir), 1); /* the directory once, first */
    CHECK(strncmp(bp_last_error(), dir, strlen(dir)) == 0);
    CHECK_EQ(bp_append(s, NULL, "e:1", "s", 0x1001, "c", 1), BP_EIO);
    CHECK(strstr(bp_last_error(), "No space left on device") != NULL);
    CHECK_EQ(occurrences(bp_last_error(), dir), 1);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    CHECK_FAILS(bp_compact(s, NULL, &co), BP_EIO, "No space left on device");
    CHECK_EQ(occurrences(bp_last_error(), dir), 1);
    CHECK_EQ(bp_store_close(s), BP_EIO);
    CHECK(strstr(bp_last_error(), "No space left on device") != NULL);
    CHECK_EQ(occurrences(bp_last_error(), dir), 1);
    bp_fault_destroy(&f);
    o.fault = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 3); /* 2 open events + "a" */
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Reads map segments; when mapping fails they read with pread instead, and serve the
 * same bytes: the failure costs speed, never data. */
static void test_mmap_failure_falls_back(void) {
    const char *dir = t_dir("fault-mmap");
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts o = OPTS;
    o.fault = &f;
    o.open_event = false;
    o.segment_size = 4096; /* several segments, each mapped on its first read */
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    char buf[160];
    bp_receipt r[40];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 40; i++)
        CHECK_OK(bp_append(s, &r[i], "e:1", "s", 0x1001, buf, payload_of(i, 0, buf)));
    f.fail_mmap_at = f.mmaps + 1;
    f.sticky = true;
    for (int i = 0; i < 40; i++) {
        bp_event *e;
        CHECK_OK(bp_get(s, &e, &r[i].event_id));
        size_t n = payload_of(i, 0, buf);
        CHECK_EQ(e->payload_len, n);
        CHECK(memcmp(e->payload, buf, n) == 0);
        CHECK_EQ(e->global_seq, r[i].global_seq);
        bp_event_free(e);
    }
    CHECK(f.tripped > 0); /* the mappings were attempted and failed */
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "e:1", BP_READ_FULL));
    const bp_event *ev;
    int k = 0;
    while (bp_iter_next(it, &ev) == BP_OK) {
        CHECK_EQ(ev->payload_len, payload_of(k, 0, buf));
        k++;
    }
    bp_iter_free(it);
    CHECK_EQ(k, 40);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* Power loss with no fault: NO_SYNC appends after the last sync are gone,
 * everything synced is there. */
static void test_power_loss_drops_only_unsynced(void) {
    const char *dir = t_dir("fault-power");
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts o = OPTS;
    o.fault = &f;
    o.open_event = false;
    o.durability = BP_NO_SYNC;
    o.segment_size = BP_DEFAULT_SEGMENT_SIZE; /* no rotation: a seal would sync */
    bp_store *s = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    char buf[160];
    for (int i = 0; i < 100; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, buf, payload_of(i, 0, buf)));
    CHECK_OK(bp_store_sync(s));
    for (int i = 100; i < 150; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", 0x1001, buf, payload_of(i, 0, buf)));
    bp__store_crash(s);
    CHECK(bp_fault_power_loss(&f) > 0);
    bp_fault_destroy(&f);
    o.fault = NULL;
    CHECK_OK(t_open_try(&s, dir, &o));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 100);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_nth_write);
    RUN(test_nth_sync);
    RUN(test_nth_rename);
    RUN(test_nth_open);
    RUN(test_short_write);
    RUN(test_nth_mmap);
    RUN(test_enospc_sticky);
    RUN(test_enospc_message);
    RUN(test_power_loss_drops_only_unsynced);
    RUN(test_mmap_failure_falls_back);
    T_DONE();
}
