/* Many processes on one store: one writer, any number of read-only opens beside it.
 *
 * A writer process appends (single appends and batches, durable and not, into small
 * segments so that it seals and rotates often; now and then it compacts the sealed segments
 * into new files, or closes and opens again) and is killed with SIGKILL and restarted again
 * and again; two reader processes meanwhile open the store read-only over and over, and two
 * follow it with one read-only open each (bp_store_refresh, and a cursor that waits). Every
 * open must succeed, and what it shows must be a consistent prefix of what the writer wrote:
 * global_seq dense from 1, every entity's chain whole (clocks 1, 2, ... and each prev_hash
 * the previous event's hash), no part of a batch, and never less than an earlier open of the
 * same reader saw, with the same event at the last seq it saw then. Every fifth writer kill
 * also kills a reader (and starts another): nothing it leaves stops the others. A read-only
 * open creates and writes no file. BP_MPROC_KILLS sets the number of writer kills (default
 * 50). */
#include "t.h"
#include "bp_testing.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

enum { ENTITIES = 12, READERS = 4 };

static const t_open_opts WRITER = {.segment_size = 64 << 10};
static const t_open_opts READER = {.read_only = true, .no_create = true};

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rnd(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* The writer: appends until killed. */
static void writer_main(const char *dir, uint64_t seed) {
    bp_store *s;
    bp__piece_bytes = 2048 << (seed % 4); /* pieces: what most readers open with */
    if (t_open_try(&s, dir, &WRITER) != BP_OK) {
        fprintf(stderr, "writer open: %s\n", bp_last_error());
        _exit(3);
    }
    uint64_t x = seed;
    char names[ENTITIES][16];
    for (int e = 0; e < ENTITIES; e++)
        snprintf(names[e], sizeof names[e], "acct:%d", e);
    uint8_t pay[300];
    memset(pay, 0x5a, sizeof pay);
    for (;;) {
        unsigned k = (unsigned)rnd(&x) % 10;
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        ao.durability = k < 3 ? BP_DURABLE : BP_NO_SYNC;
        bp_status rc;
        if (k < 7) {
            rc = bp_append_ex(s, NULL, names[rnd(&x) % ENTITIES], "bank", 0x1001, pay,
                              1 + rnd(&x) % sizeof pay, &ao);
        } else {
            bp_batch_item items[24];
            size_t n = 2 + rnd(&x) % 22;
            for (size_t i = 0; i < n; i++)
                items[i] = (bp_batch_item){names[rnd(&x) % ENTITIES], "bank", 0x1002, pay,
                                           1 + rnd(&x) % sizeof pay,  NULL};
            bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
            bo.durability = ao.durability;
            rc = bp_append_batch_ex(s, NULL, items, n, &bo);
        }
        if (rc) {
            fprintf(stderr, "writer append: %s\n", bp_last_error());
            _exit(4);
        }
        unsigned m = (unsigned)rnd(&x) % 150;
        bp_compact_report cr = BP_COMPACT_REPORT_INIT;
        if (m == 0 && bp_compact(s, &cr, NULL)) { /* merge the sealed segments: new files */
            fprintf(stderr, "writer compact: %s\n", bp_last_error());
            _exit(5);
        }
        if (m == 0 && getenv("BP_MPROC_VERBOSE"))
            fprintf(stderr, "writer: compacted %u segments into %u\n", cr.segments_before,
                    cr.segments_after);
        if (m == 1) { /* a clean close (checkpoint, seal) and a new writer's open */
            if (bp_store_close(s) || t_open_try(&s, dir, &WRITER)) {
                fprintf(stderr, "writer reopen: %s\n", bp_last_error());
                _exit(6);
            }
        }
    }
}

/* What a reader has seen: the next seq, each entity's chain, the batch it is in. */
typedef struct chain {
    uint64_t clock[ENTITIES], n, batch_next, batch_id, batch_left;
    bp_hash head[ENTITIES], last; /* (last: the hash of event n) */
} chain;

/* The next event a reader sees: 0 when it continues c, else a code (after a message). */
static int chain_next(chain *c, const bp_event *ev) {
    int e = atoi(ev->entity + 5), bad = 0;
    c->n++;
    if (ev->global_seq != c->n)
        bad = 12;
    else if (e < 0 || e >= ENTITIES || ev->clock != c->clock[e] + 1 ||
             memcmp(ev->prev_hash.b, c->head[e].b, 32) != 0)
        bad = 13;
    else if (c->batch_left && (ev->batch_id != c->batch_id || ev->batch_index != c->batch_next))
        bad = 14;
    if (bad) {
        fprintf(stderr, "reader: event %llu of %s (clock %llu) breaks the prefix (%d)\n",
                (unsigned long long)ev->global_seq, ev->entity, (unsigned long long)ev->clock, bad);
        return bad;
    }
    if (ev->batch_count) {
        if (!c->batch_left) {
            c->batch_id = ev->batch_id;
            c->batch_left = ev->batch_count;
        }
        c->batch_next = ev->batch_index + 1;
        c->batch_left--;
    }
    c->clock[e] = ev->clock;
    c->head[e] = ev->event_hash;
    c->last = ev->event_hash;
    return 0;
}

/* Every event of s above c->n, checked: 0, or a code. */
static int read_on(bp_store *s, chain *c, uint64_t *at_seen, bp_hash *hash_at_seen) {
    bp_region all = BP_REGION_INIT;
    all.from_seq = c->n + 1;
    bp_iter *it;
    if (bp_query(s, &it, &all, BP_READ_FULL)) {
        fprintf(stderr, "reader query: %s\n", bp_last_error());
        return 11;
    }
    const bp_event *ev;
    bp_status rc;
    int bad = 0;
    while (!bad && (rc = bp_iter_next(it, &ev)) == BP_OK) {
        bad = chain_next(c, ev);
        if (!bad && at_seen && c->n == *at_seen) *hash_at_seen = ev->event_hash;
    }
    if (!bad && rc != BP_DONE) {
        fprintf(stderr, "reader next: %s\n", bp_last_error());
        bad = 15;
    }
    bp_iter_free(it);
    return bad;
}

/* One read-only open, checked. *seen / *last_hash: what the previous open showed (the
 * highest seq and its hash), updated. 0 when consistent. */
static int check_once(const char *dir, uint64_t *seen, bp_hash *last_hash) {
    bp_store *s;
    if (t_open_try(&s, dir, &READER) != BP_OK) {
        fprintf(stderr, "reader open: %s\n", bp_last_error());
        return 10;
    }
    chain c;
    memset(&c, 0, sizeof c);
    bp_hash at;
    memset(&at, 0, sizeof at);
    int bad = read_on(s, &c, seen, &at);
    if (!bad && c.batch_left) {
        fprintf(stderr, "reader: a batch seen in part (%llu events missing)\n",
                (unsigned long long)c.batch_left);
        bad = 16;
    }
    if (!bad && (c.n < *seen || (*seen && memcmp(at.b, last_hash->b, 32) != 0))) {
        fprintf(stderr, "reader: %llu events after %llu before, or another event at seq %llu\n",
                (unsigned long long)c.n, (unsigned long long)*seen, (unsigned long long)*seen);
        bad = 17;
    }
    bp_store_close(s);
    *seen = c.n;
    if (c.n) *last_hash = c.last;
    return bad;
}

/* The seq the last writer published, which the stop file holds once it is there (0 before:
 * no stop file, or not yet written whole). */
static uint64_t stop_seq(const char *stop) {
    FILE *f = fopen(stop, "r");
    unsigned long long n = 0;
    if (f && fscanf(f, "%llu", &n) != 1) n = 0;
    if (f) fclose(f);
    return n;
}

/* A follower: one read-only open for its whole life, which takes in what the writers
 * publish, with bp_store_refresh (use_cursor false) or a cursor that waits (its follower
 * thread refreshes), checking every event against the ones before. Whatever a writer killed
 * with -9 had published, the next writer goes on from: the follower never sees a seq again
 * or a chain break. Exits with the first failure, or 0 once it saw every event up to the
 * seq in the stop file (the last writer's, closed: it appended after this open). */
static void follower_main(const char *dir, const char *stop, bool use_cursor) {
    bp_store *s;
    if (t_open_try(&s, dir, &READER) != BP_OK) {
        fprintf(stderr, "follower open: %s\n", bp_last_error());
        _exit(30);
    }
    chain c;
    memset(&c, 0, sizeof c);
    int bad = read_on(s, &c, NULL, NULL);
    uint64_t first = c.n;
    bp_cursor *cur = NULL;
    bp_region all = BP_REGION_INIT;
    if (!bad && use_cursor && bp_cursor_open(s, &cur, &all, c.n)) bad = 31;
    uint64_t end = 0, deadline = 0;
    while (!bad) {
        if (!end && (end = stop_seq(stop)) != 0) deadline = now_us() + 20000000u;
        if (end && c.n >= end) break;
        if (end && now_us() > deadline) {
            fprintf(stderr, "follower: at seq %llu 20 s after the last writer closed at %llu\n",
                    (unsigned long long)c.n, (unsigned long long)end);
            bad = 35;
            break;
        }
        if (use_cursor) {
            const bp_event *evs[64];
            size_t n = 0;
            bp_status rc = bp_cursor_next(cur, evs, 64, &n, 20);
            if (rc && rc != BP_ETIMEDOUT) {
                fprintf(stderr, "follower cursor: %s\n", bp_last_error());
                bad = 32;
            }
            for (size_t i = 0; !bad && i < n; i++)
                bad = chain_next(&c, evs[i]);
        } else {
            uint64_t pub = 0;
            if (bp_store_refresh(s, &pub)) {
                fprintf(stderr, "follower refresh: %s\n", bp_last_error());
                bad = 33;
            } else if (pub > c.n) {
                bad = read_on(s, &c, NULL, NULL);
            } else {
                sleep_ms(1);
            }
        }
        if (!bad && c.batch_left && !use_cursor) {
            fprintf(stderr, "follower: a batch seen in part\n");
            bad = 34;
        }
    }
    bp_cursor_free(cur);
    bp_store_close(s);
    if (getenv("BP_MPROC_VERBOSE"))
        fprintf(stderr, "follower (%s): %llu events at open, %llu at the end\n",
                use_cursor ? "cursor" : "refresh", (unsigned long long)first,
                (unsigned long long)c.n);
    _exit(bad);
}

/* A reader: opens and checks until the file stop appears; exits with the first failure, or
 * 0 (and at least one open made). */
static void reader_main(const char *dir, const char *stop, int r) {
    if (r % 2) follower_main(dir, stop, r == 3);
    uint64_t seen = 0;
    bp_hash last;
    memset(&last, 0, sizeof last);
    unsigned opens = 0;
    for (;;) {
        bool last_round = access(stop, F_OK) == 0;
        int bad = check_once(dir, &seen, &last);
        if (bad) _exit(bad);
        opens++;
        if (last_round) break;
    }
    _exit(opens ? 0 : 20);
}

/* The reader processes of the test below, killed when the program ends however it ends (a
 * failed check returns before it stops them). */
static pid_t g_readers[READERS];

static void kill_readers(void) {
    for (int r = 0; r < READERS; r++)
        if (g_readers[r] > 0) kill(g_readers[r], SIGKILL);
}

static void test_readers_beside_a_killed_writer(void) {
    const char *dir = t_dir("mproc");
    char stop[1200];
    snprintf(stop, sizeof stop, "%s.stop", dir);
    unlink(stop);
    const char *env = getenv("BP_MPROC_KILLS");
    int kills = env ? atoi(env) : 50;
    /* a store with a first event before the readers start */
    bp_store *s = t_open(dir, &WRITER);
    CHECK_OK(bp_append(s, NULL, "acct:0", "bank", 0x1001, "x", 1));
    CHECK_OK(bp_store_close(s));
    pid_t *readers = g_readers;
    atexit(kill_readers);
    for (int r = 0; r < READERS; r++) {
        readers[r] = fork();
        CHECK(readers[r] >= 0);
        if (readers[r] == 0) reader_main(dir, stop, r);
    }
    uint64_t x = 7;
    for (int k = 0; k < kills; k++) {
        pid_t w = fork();
        CHECK(w >= 0);
        if (w == 0) writer_main(dir, (uint64_t)k + 1);
        sleep_ms(10 + (unsigned)(rnd(&x) % 60));
        kill(w, SIGKILL);
        int st;
        CHECK_EQ(waitpid(w, &st, 0), w);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL); /* not an exit: it never failed */
        if (k % 5 == 4 &&
            k + 5 < kills) { /* a reader killed with -9 too, mid-read: it leaves nothing behind */
            int r = (int)(rnd(&x) % READERS);
            kill(readers[r], SIGKILL);
            CHECK_EQ(waitpid(readers[r], &st, 0), readers[r]);
            CHECK(WIFSIGNALED(st)); /* (not an exit: it had not failed) */
            readers[r] = fork();
            CHECK(readers[r] >= 0);
            if (readers[r] == 0) reader_main(dir, stop, r);
        }
    }
    /* a last writer, closed: every follower must reach its last event */
    s = t_open(dir, &WRITER);
    bp_receipt rec = BP_RECEIPT_INIT;
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(s, &rec, "acct:1", "bank", 0x1001, "end", 3));
    CHECK_OK(bp_store_close(s));
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", stop);
    FILE *sf = fopen(tmp, "w");
    CHECK(sf != NULL);
    if (sf) {
        fprintf(sf, "%llu\n", (unsigned long long)rec.global_seq);
        CHECK(fclose(sf) == 0);
    }
    CHECK(rename(tmp, stop) == 0);
    for (int r = 0; r < READERS; r++) {
        int st;
        CHECK_EQ(waitpid(readers[r], &st, 0), readers[r]);
        readers[r] = 0; /* (reaped: not killed at exit) */
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "reader %d: %s %d\n", r, WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    /* what the readers saw is what a writer's recovery keeps */
    s = t_open(dir, &WRITER);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));
    unlink(stop);
    t_rmdir(dir);
}

/* A read-only open writes nothing: no LOCK file appears, no file changes (sizes and times). */
static void test_read_only_writes_nothing(void) {
    const char *dir = t_dir("mproc-ro");
    bp_store *s = t_open(dir, &WRITER);
    for (int i = 0; i < 200; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0x1001, "payload", 7));
    CHECK_OK(bp_store_close(s));
    char lock[1200], cmd[2600], before[1300], after[1300];
    snprintf(lock, sizeof lock, "%s/LOCK", dir);
    CHECK_EQ(unlink(lock), 0); /* as a copy of the store made without it (a backup) has it */
    snprintf(before, sizeof before, "%s.before", dir);
    snprintf(after, sizeof after, "%s.after", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -printf '%%p %%s %%T@\\n' | sort > '%s'", dir,
             before);
    CHECK_EQ(system(cmd), 0);
    CHECK_OK(t_open_try(&s, dir, &READER));
    CHECK_EQ(t_count_stream(s, "acct:1"), 200);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.readers, 0); /* no LOCK to take a byte of: uncounted */
    CHECK_EQ(st.writer_pid, 0);
    CHECK_OK(bp_store_close(s));
    CHECK(access(lock, F_OK) != 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -printf '%%p %%s %%T@\\n' | sort > '%s'", dir,
             after);
    CHECK_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", before, after);
    CHECK_EQ(system(cmd), 0);
    unlink(before);
    unlink(after);
    t_rmdir(dir);
}

/* The store's stats name its writer and count its readers in every process; a reader killed
 * with -9 leaves no trace (the kernel drops its lock). */
static void test_writer_and_readers_counted(void) {
    const char *dir = t_dir("mproc-count");
    bp_store *w = t_open(dir, &WRITER);
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(w, &st));
    CHECK_EQ(st.writer_pid, getpid());
    CHECK_EQ(st.readers, 0);
    int ready[2], go[2];
    CHECK_EQ(pipe(ready), 0);
    CHECK_EQ(pipe(go), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        CHECK(kids[k] >= 0);
        if (kids[k] == 0) { /* a reader that stays open until told, killed, or the parent goes */
            close(go[1]);
            close(ready[0]);
            bp_store *r;
            char c = t_open_try(&r, dir, &READER) == BP_OK ? 'y' : 'n';
            if (write(ready[1], &c, 1) != 1) _exit(2);
            if (read(go[0], &c, 1) != 1) _exit(3);
            bp_store_close(r);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        char c = 0;
        CHECK_EQ(read(ready[0], &c, 1), 1);
        CHECK_EQ(c, 'y');
    }
    CHECK_OK(bp_store_stats_get(w, &st));
    CHECK_EQ(st.readers, 2);
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER)); /* a third, in this process */
    CHECK_OK(bp_store_stats_get(r, &st));
    CHECK_EQ(st.readers, 3);
    CHECK_EQ(st.writer_pid, getpid());
    CHECK(st.read_only);
    kill(kids[0], SIGKILL); /* killed: its count goes with it */
    int status;
    CHECK_EQ(waitpid(kids[0], &status, 0), kids[0]);
    CHECK_OK(bp_store_stats_get(w, &st));
    CHECK_EQ(st.readers, 2);
    CHECK_EQ(write(go[1], "x", 1), 1); /* the other closes */
    CHECK_EQ(waitpid(kids[1], &status, 0), kids[1]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(bp_store_stats_get(w, &st));
    CHECK_EQ(st.readers, 1);
    CHECK_OK(bp_store_close(w));
    CHECK_OK(bp_store_stats_get(r, &st)); /* no writer now */
    CHECK_EQ(st.writer_pid, 0);
    CHECK_EQ(st.readers, 1);
    CHECK_OK(bp_store_close(r));
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    t_rmdir(dir);
}

/* Every event of s read whole (BP_READ_FULL), checked to be seq 1, 2, ...: how many, or
 * UINT64_MAX at the first failure. */
static uint64_t read_all_full(bp_store *s) {
    bp_iter *it;
    const bp_event *ev;
    bp_region all = BP_REGION_INIT;
    uint64_t n = 0;
    if (bp_query(s, &it, &all, BP_READ_FULL)) return UINT64_MAX;
    bp_status rc;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK && ev->global_seq == n + 1 && ev->payload_len)
        n++;
    bp_iter_free(it);
    if (rc != BP_DONE)
        fprintf(stderr, "read_all_full: at %llu: %s\n", (unsigned long long)n,
                rc == BP_OK ? "a seq out of place" : bp_last_error());
    return rc == BP_DONE ? n : UINT64_MAX;
}

/* A reader opened while the writer's newest segment holds events reads that segment from
 * the file it indexed, even when the writer seals it and a compaction renames a new file in
 * under its name before the reader's first read of it; and a reader whose newest segment and
 * the next were both replaced before it followed them moves to the new files at its refresh
 * (no error: the files changed under its view, and a new view shows them). */
static void test_reader_newest_segment_replaced(void) {
    const char *dir = t_dir("mproc-newest");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[200];
    memset(pay, 'q', sizeof pay);
    for (int i = 0; i < 70; i++) /* (two sealed segments, the active one with events) */
        CHECK_OK(bp_append(w, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay));
    bp_store *r, *f;
    CHECK_OK(t_open_try(&r, dir, &READER));
    CHECK_OK(t_open_try(&f, dir, &READER));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(r, &st));
    CHECK(st.segments >= 3);
    for (int i = 0; i < 60; i++) /* r's newest sealed, and more after it */
        CHECK_OK(bp_append(w, NULL, "acct:3", "bank", 0x1001, pay, sizeof pay));
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 5; /* every segment's file replaced, fewer of them */
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(w, &cr, &co));
    CHECK(cr.segments_after < cr.segments_before);
    CHECK_EQ(read_all_full(r), 70); /* its view, whole, from the files it opened */
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(f, &pub)); /* f follows: the files it would go on in changed */
    CHECK_EQ(pub, 130);
    CHECK_EQ(t_count_stream(f, "acct:3"), 5);
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, 130);
    CHECK_EQ(t_count_stream(r, "acct:1"), 5);
    CHECK_OK(bp_append(w, NULL, "acct:3", "bank", 0x1001, pay, sizeof pay));
    CHECK_OK(bp_store_refresh(f, &pub));
    CHECK_EQ(pub, 131);
    CHECK_EQ(t_count_stream(f, "acct:3"), 6);
    CHECK_OK(bp_store_close(f));
    CHECK_OK(bp_store_close(r));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* The writer the refresh hook below compacts, and how many times it did. */
static bp_store *g_compact_w;
static int g_compacted;

static void compact_mid_refresh(bp_store *r) {
    (void)r;
    if (g_compacted++) return;
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 5;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    if (bp_compact(g_compact_w, &cr, &co)) fprintf(stderr, "compact: %s\n", bp_last_error());
}

/* A compaction between a follower's look at the writer's mark and its following the files:
 * the mark it read says nothing of it, the segments it follows into were replaced or removed.
 * The refresh makes a new view instead of failing, and shows what the compaction kept. */
static void test_refresh_beside_a_compaction(void) {
    const char *dir = t_dir("mproc-midrefresh");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[200];
    memset(pay, 'm', sizeof pay);
    for (int i = 0; i < 70; i++)
        CHECK_OK(bp_append(w, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay));
    bp_store *f;
    CHECK_OK(t_open_try(&f, dir, &READER));
    for (int i = 0; i < 60; i++)
        CHECK_OK(bp_append(w, NULL, "acct:3", "bank", 0x1001, pay, sizeof pay));
    g_compact_w = w;
    g_compacted = 0;
    bp__refresh_step = compact_mid_refresh;
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(f, &pub));
    bp__refresh_step = NULL;
    CHECK_EQ(g_compacted, 1);
    CHECK_EQ(pub, 130);
    CHECK_EQ(t_count_stream(f, "acct:3"), 5);
    CHECK_EQ(t_count_stream(f, "acct:1"), 5);
    bp_iter *it; /* the kept events, read whole from the new files */
    const bp_event *ev;
    uint64_t whole = 0;
    CHECK_OK(bp_stream(f, &it, "acct:3", BP_READ_FULL));
    while (bp_iter_next(it, &ev) == BP_OK)
        whole += ev->payload_len == sizeof pay && ev->clock > 55;
    bp_iter_free(it);
    CHECK_EQ(whole, 5);
    CHECK_OK(bp_append(w, NULL, "acct:3", "bank", 0x1001, pay, sizeof pay));
    CHECK_OK(bp_store_refresh(f, &pub));
    CHECK_EQ(pub, 131);
    CHECK_EQ(t_count_stream(f, "acct:3"), 6);
    CHECK_OK(bp_store_close(f));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* A follower whose new view cannot be made (a segment file gone after a compaction: damage,
 * not a moment of renames) goes on with the view it has, and after about 3 s of tries says
 * why instead of waiting in silence; once the file is back it moves on. */
static void test_refresh_reports_a_view_it_cannot_make(void) {
    const char *dir = t_dir("mproc-noview");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[200];
    memset(pay, 'n', sizeof pay);
    for (int i = 0; i < 70; i++)
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, pay, sizeof pay));
    bp_store *f;
    CHECK_OK(t_open_try(&f, dir, &READER));
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 5; /* (new files: the mark moves, f makes a view anew) */
    CHECK_OK(bp_compact(w, NULL, &co));
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, pay, sizeof pay));
    char seg[1200], aside[1300], name[16] = "";
    for (int k = 1; k < 10 && !name[0]; k++) { /* the first segment the compaction left */
        snprintf(seg, sizeof seg, "%s/segments/%06d.fbat", dir, k);
        if (access(seg, F_OK) == 0) snprintf(name, sizeof name, "%06d", k);
    }
    snprintf(aside, sizeof aside, "%s.aside", seg);
    CHECK(rename(seg, aside) == 0);
    uint64_t pub = 0, t0 = now_us();
    bp_status rc = BP_OK;
    while (rc == BP_OK && now_us() - t0 < 10000000u) {
        rc = bp_store_refresh(f, &pub);
        if (rc == BP_OK) CHECK_EQ(pub, 70); /* the view it has, meanwhile */
        sleep_ms(20);
    }
    CHECK(rc != BP_OK);
    CHECK(now_us() - t0 >= 2000000u); /* not at the first try: a compaction renames for a moment */
    CHECK(name[0] && strstr(bp_last_error(), name) != NULL);
    CHECK_EQ(bp_store_refresh(f, &pub), rc); /* every caller hears it from now on */
    CHECK(name[0] && strstr(bp_last_error(), name) != NULL);
    CHECK_EQ(t_count_stream(f, "acct:1"), 70);
    CHECK(rename(aside, seg) == 0);
    for (int i = 0; i < 50 && pub != 71; i++) { /* (the next try makes a view) */
        sleep_ms(20);
        (void)bp_store_refresh(f, &pub);
    }
    CHECK_EQ(pub, 71);
    CHECK_OK(bp_store_refresh(f, &pub));
    CHECK_EQ(t_count_stream(f, "acct:1"), 6); /* the 5 kept and the new one */
    CHECK_OK(bp_store_close(f));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* A frame the writer published but a follower has not read yet is damaged in the file: the
 * follower's refresh says so (the writer's page says nothing moved), it does not take a view
 * that silently stops short of the writer's mark. */
static void test_refresh_reports_damage_it_meets(void) {
    const char *dir = t_dir("mproc-damage");
    bp_store *w = t_open(dir, NULL);
    char pay[200];
    memset(pay, 'a', sizeof pay);
    for (int i = 0; i < 10; i++)
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, pay, sizeof pay));
    bp_store *f;
    CHECK_OK(t_open_try(&f, dir, &READER));
    memset(pay, 'Z', sizeof pay);
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, pay, sizeof pay)); /* (durable) */
    char seg[1200];
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", dir);
    int fd = open(seg, O_RDWR);
    CHECK(fd >= 0);
    static char buf[1 << 16];
    ssize_t got = fd >= 0 ? pread(fd, buf, sizeof buf, 0) : -1;
    char *z = got > 0 ? memmem(buf, (size_t)got, pay, sizeof pay) : NULL;
    CHECK(z != NULL);
    if (z) CHECK_EQ(pwrite(fd, "y", 1, (off_t)(z - buf) + 100), 1);
    if (fd >= 0) close(fd);
    uint64_t pub = 0;
    CHECK_EQ(bp_store_refresh(f, &pub), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "damaged after seq 10") != NULL);
    CHECK_EQ(pub, 10);
    CHECK_OK(bp_store_close(f));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* Mapped segment files that are deleted (replaced by a compaction) in this process. */
static int deleted_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4600];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, ".fbat (deleted)") != NULL;
    fclose(f);
    return n;
}

/* A reader beside a writer that compacts: it goes on reading the files it opened (no read
 * fails, every event the one asked for), and its next refresh moves it to the new files: it
 * shows what the compaction kept, and lets the replaced files go. An iterator made before
 * and read after goes on with its own entity's events. */
static void test_reader_moves_to_compacted_files(void) {
    const char *dir = t_dir("mproc-compact");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 4096});
    char pay[100];
    memset(pay, 'p', sizeof pay);
    for (int i = 0; i < 300; i++) {
        char ent[16];
        snprintf(ent, sizeof ent, "acct:%d", i % 3);
        CHECK_OK(bp_append(w, NULL, ent, "bank", 0x1001, pay, sizeof pay));
    }
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER));
    CHECK_EQ(t_count_stream(r, "acct:1"), 100);
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(r, &it, "acct:2", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_EQ(ev->clock, 1);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 2;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(w, &cr, &co));
    CHECK(cr.segments_before > 2);
    CHECK(deleted_mappings() > 0);              /* the reader keeps what it opened */
    CHECK_EQ(t_count_stream(r, "acct:1"), 100); /* and reads it whole */
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "new", 3));
    /* a snapshot from the reader: up to what the writer published, from the new files */
    char snap[1200];
    snprintf(snap, sizeof snap, "%s.snap", dir);
    bp_snapshot_report sr = BP_SNAPSHOT_REPORT_INIT;
    CHECK_OK(bp_store_snapshot(r, &sr, snap));
    CHECK_EQ(sr.global_seq, 301);
    bp_store *c;
    CHECK_OK(t_open_try(&c, snap, &READER));
    CHECK_EQ(t_count_stream(c, "acct:1"), 3);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(c, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(c));
    t_rmdir(snap);
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, 301);
    CHECK_EQ(t_count_stream(r, "acct:1"), 3); /* the 2 kept, and the new one */
    CHECK_EQ(t_count_stream(r, "acct:0"), 2);
    bp_status rc;
    uint64_t last = 1;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK) { /* acct:2's, and in order */
        CHECK(strcmp(ev->entity, "acct:2") == 0);
        CHECK(ev->clock > last);
        last = ev->clock;
    }
    CHECK(rc == BP_DONE || rc == BP_ECORRUPT || rc == BP_EIO);
    bp_iter_free(it); /* (its event held the file of acct:2's first one) */
    CHECK_EQ(deleted_mappings(), 0);
    /* a compaction that leaves holes at the end of the log (a tombstoned entity's events
     * last): the writer's mark is the last event with a frame, the reader follows it */
    for (int i = 0; i < 40; i++)
        CHECK_OK(bp_append(w, NULL, "gone:1", "bank", 0x1001, pay, sizeof pay));
    CHECK_OK(bp_tombstone(w, NULL, "gone:1", "bank"));
    bp_compact_options tomb = BP_COMPACT_OPTIONS_INIT;
    tomb.tombstoned = true;
    CHECK_OK(bp_store_sync(w)); /* (its segment sealed: a compaction takes sealed ones) */
    bp_compact_report tr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(w, &tr, &tomb));
    bp_store_diagnostics wd = BP_STORE_DIAGNOSTICS_INIT;
    CHECK_OK(bp_store_diagnostics_get(w, &wd));
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, wd.published_seq);
    CHECK_EQ(t_count_stream(r, "gone:1"), t_count_stream(w, "gone:1"));
    CHECK_EQ(t_count_stream(r, "acct:1"), 3);
    CHECK_OK(bp_store_close(r));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* stats of a read-only handle beside a live writer show the writer's figures (DIR/LIVE):
 * its appends, fsyncs and latency, its open report, and its fail-stop with the reason. */
static void test_writer_figures_seen_by_readers(void) {
    const char *dir = t_dir("mproc-figures");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *w = t_open(dir, &(t_open_opts){.fault = &f});
    for (int i = 0; i < 50; i++)
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
    bp_store_stats ws = BP_STORE_STATS_INIT, rs = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(w, &ws));
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER));
    /* the writer's figures reach the page at most 10 ms after a publish: wait for them */
    for (int k = 0; k < 200; k++) {
        CHECK_OK(bp_store_stats_get(r, &rs));
        if (rs.appends == ws.appends) break;
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
        CHECK_OK(bp_store_stats_get(w, &ws));
        sleep_ms(10);
    }
    CHECK_EQ(rs.appends, ws.appends);
    CHECK(rs.appends >= 50);
    CHECK(rs.fsyncs > 0 && rs.write_p50_us > 0);
    CHECK(!rs.failed);
    bp_store_open_report wr = BP_STORE_OPEN_REPORT_INIT, mine = BP_STORE_OPEN_REPORT_INIT;
    CHECK_OK(bp_store_writer_report(r, &wr));
    CHECK_OK(bp_store_open_report_get(w, &mine));
    CHECK_EQ(wr.duration_us, mine.duration_us);
    CHECK(wr.created);
    char *prom = NULL;
    CHECK_OK(bp_store_prometheus(r, &prom));
    char want[64];
    snprintf(want, sizeof want, "batpak_appends_total %llu", (unsigned long long)rs.appends);
    CHECK(prom && strstr(prom, want));
    bp_free(prom);
    /* the writer fail-stops: the reader sees it, with the reason */
    f.fail_sync_at = f.syncs + 1;
    CHECK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1) == BP_EIO);
    CHECK_OK(bp_store_stats_get(r, &rs));
    CHECK(rs.failed);
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    CHECK_OK(bp_store_diagnostics_get(r, &d));
    CHECK(d.failed && strstr(d.failed_msg, "fdatasync") != NULL);
    bp_store_close(w);
    CHECK(bp_store_writer_report(r, &wr) == BP_ENOTFOUND); /* no writer now */
    CHECK_OK(bp_store_stats_get(r, &rs));
    CHECK_EQ(rs.appends, 0);
    CHECK_OK(bp_store_close(r));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* A worker handler that holds its first event until the gate opens. */
static int g_gate; /* atomic */
static bp_status gated(void *ctx, const bp_delivery *d) {
    (void)ctx;
    (void)d;
    while (!__atomic_load_n(&g_gate, __ATOMIC_SEQ_CST))
        sleep_ms(1);
    return BP_OK;
}

/* The writer's workers and subscriptions (in-process ones, which no file under cursors/ names)
 * reach its readers' bp_delivery_stats and prometheus with their lag. */
static void test_writer_delivery_seen_by_readers(void) {
    const char *dir = t_dir("mproc-delivery");
    bp_store *w = t_open(dir, NULL);
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER));
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT;
    CHECK_OK(bp_delivery_stats_get(r, &ds));
    CHECK(ds.workers == 0 && ds.subscriptions == 0);
    bp_region all = BP_REGION_INIT;
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(w, &sub, &all, 4));
    bp_worker *wk;
    __atomic_store_n(&g_gate, 0, __ATOMIC_SEQ_CST);
    CHECK_OK(bp_cursor_worker(w, &wk, &all, gated, NULL, NULL));
    for (int k = 0; k < 300; k++) { /* the figures reach the page at most 10 ms after a publish */
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
        CHECK_OK(bp_delivery_stats_get(r, &ds));
        if (ds.workers == 1 && ds.subscriptions == 1 && ds.dropped > 0 && ds.lag_events_max > 2)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(ds.workers, 1);
    CHECK_EQ(ds.subscriptions, 1);
    CHECK_EQ(ds.queued, 4);
    CHECK(ds.dropped > 0 && ds.lag_events_max > 2);
    bp_delivery_stats mine = BP_DELIVERY_STATS_INIT; /* never more than the writer's own */
    CHECK_OK(bp_delivery_stats_get(w, &mine));
    CHECK(ds.lag_events_max <= mine.lag_events_max && ds.dropped <= mine.dropped);
    char *prom = NULL;
    CHECK_OK(bp_store_prometheus(r, &prom));
    CHECK(prom && strstr(prom, "batpak_workers 1"));
    bp_free(prom);
    __atomic_store_n(&g_gate, 1, __ATOMIC_SEQ_CST);
    CHECK_OK(bp_worker_stop(wk));
    bp_unsubscribe(sub);
    CHECK_OK(bp_store_close(w));
    CHECK_OK(bp_delivery_stats_get(r, &ds)); /* no writer: its figures are gone */
    CHECK(ds.workers == 0 && ds.subscriptions == 0);
    CHECK_OK(bp_store_close(r));
    t_rmdir(dir);
}

/* Threads of one reader process while its writer appends and compacts: one follows with a
 * cursor (its refreshes and the follower thread's take in events and make new views after
 * each compaction), another reads every event again and again meanwhile. Every event each
 * sees continues its entity's chain (the TSan build checks the locking). */
typedef struct race_reader {
    bp_store *r;
    int stop; /* atomic */
    uint64_t seen;
    int bad; /* atomic */
} race_reader;

static int race_bad(race_reader *rr) {
    return __atomic_load_n(&rr->bad, __ATOMIC_SEQ_CST);
}

static void race_fail(race_reader *rr, int bad) {
    if (bad) __atomic_store_n(&rr->bad, bad, __ATOMIC_SEQ_CST);
}

static void *race_follow(void *arg) {
    race_reader *rr = arg;
    bp_cursor *c;
    bp_region all = BP_REGION_INIT;
    if (bp_cursor_open(rr->r, &c, &all, 0)) {
        race_fail(rr, 1);
        return NULL;
    }
    chain ch;
    memset(&ch, 0, sizeof ch);
    int bad = 0;
    while (!bad && !race_bad(rr) && !__atomic_load_n(&rr->stop, __ATOMIC_SEQ_CST)) {
        const bp_event *evs[64];
        size_t n = 0;
        bp_status rc = bp_cursor_next(c, evs, 64, &n, 5);
        if (rc && rc != BP_ETIMEDOUT) bad = 2;
        for (size_t i = 0; !bad && i < n; i++)
            bad = chain_next(&ch, evs[i]);
    }
    race_fail(rr, bad);
    rr->seen = ch.n;
    bp_cursor_free(c);
    return NULL;
}

static void *race_scan(void *arg) {
    race_reader *rr = arg;
    while (!race_bad(rr) && !__atomic_load_n(&rr->stop, __ATOMIC_SEQ_CST)) {
        chain ch;
        memset(&ch, 0, sizeof ch);
        race_fail(rr, read_on(rr->r, &ch, NULL, NULL));
    }
    return NULL;
}

static void test_reader_threads_beside_compactions(void) {
    const char *dir = t_dir("mproc-race");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    CHECK_OK(bp_append(w, NULL, "acct:0", "bank", 0x1001, "x", 1));
    race_reader rr = {0};
    CHECK_OK(t_open_try(&rr.r, dir, &READER));
    pthread_t a, b;
    CHECK_EQ(pthread_create(&a, NULL, race_follow, &rr), 0);
    CHECK_EQ(pthread_create(&b, NULL, race_scan, &rr), 0);
    char pay[64];
    memset(pay, 'q', sizeof pay);
    for (int i = 1; i < 1500 && !race_bad(&rr); i++) {
        char ent[16];
        snprintf(ent, sizeof ent, "acct:%d", i % ENTITIES);
        CHECK_OK(bp_append(w, NULL, ent, "bank", 0x1001, pay, sizeof pay));
        if (i % 300 == 0) CHECK_OK(bp_compact(w, NULL, NULL)); /* merge: new files */
    }
    for (int k = 0; k < 400 && !race_bad(&rr); k++) { /* the follower catches up */
        uint64_t pub = 0;
        CHECK_OK(bp_store_refresh(rr.r, &pub));
        if (pub >= 1500) break;
        sleep_ms(5);
    }
    sleep_ms(50);
    __atomic_store_n(&rr.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_EQ(race_bad(&rr), 0);
    CHECK_EQ(rr.seen, 1500);
    CHECK_OK(bp_store_close(rr.r));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* What a reader can see under each durability: a BP_DURABLE append once synced (never while
 * its fdatasync runs: a power loss then could take it back), a BP_NO_SYNC one once written. */
typedef struct slow_append {
    bp_store *w;
    bp_status rc;
} slow_append;

static void *durable_append(void *arg) {
    slow_append *a = arg;
    a->rc = bp_append(a->w, NULL, "acct:9", "bank", 0x1001, "durable", 7);
    return NULL;
}

static void test_durable_visible_once_synced(void) {
    const char *dir = t_dir("mproc-visible");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *w = t_open(dir, &(t_open_opts){.fault = &f});
    CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, "x", 1));
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER));
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, 1);
    f.sync_delay_us = 300000; /* the next fdatasync takes 0.3 s */
    slow_append a = {w, BP_OK};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, durable_append, &a), 0);
    sleep_ms(100); /* written, in its fdatasync */
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    CHECK_OK(bp_store_diagnostics_get(w, &d));
    CHECK_EQ(d.written_seq, 2); /* (the frame is in the file) */
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, 1);
    CHECK_EQ(t_count_stream(r, "acct:9"), 0);
    pthread_join(t, NULL);
    CHECK_OK(a.rc);
    CHECK_OK(bp_store_refresh(r, &pub)); /* its receipt returned: published */
    CHECK_EQ(pub, 2);
    CHECK_EQ(t_count_stream(r, "acct:9"), 1);
    f.sync_delay_us = 0;
    bp_append_options ao = BP_APPEND_OPTIONS_INIT;
    ao.durability = BP_NO_SYNC;
    CHECK_OK(bp_append_ex(w, NULL, "acct:9", "bank", 0x1001, "fast", 4, &ao));
    CHECK_OK(bp_store_refresh(r, &pub)); /* written, not synced: visible */
    CHECK_EQ(pub, 3);
    CHECK_OK(bp_store_close(r));
    CHECK_OK(bp_store_close(w));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* The payload length of acct:1's last event, read from its frame. */
static size_t read_tail_payload(bp_store *r) {
    bp_iter *it;
    const bp_event *ev;
    size_t len = 0;
    if (bp_stream(r, &it, "acct:1", BP_READ_FULL)) return 0;
    while (bp_iter_next(it, &ev) == BP_OK)
        len = ev->payload_len;
    bp_iter_free(it);
    return len;
}

/* A reader that follows a writer through many segments holds a bounded number of
 * descriptors: each segment it saw sealed stays mapped, not open. */
static void test_follower_descriptors_bounded(void) {
    const char *dir = t_dir("mproc-fds");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 4096});
    CHECK_OK(bp_append(w, NULL, "acct:0", "bank", 0x1001, "x", 1));
    bp_store *r;
    CHECK_OK(t_open_try(&r, dir, &READER));
    int base = open_fds();
    char pay[200];
    memset(pay, 'f', sizeof pay);
    uint64_t pub = 0;
    for (int i = 0; i < 600; i++) {
        CHECK_OK(bp_append(w, NULL, "acct:1", "bank", 0x1001, pay, sizeof pay));
        CHECK_OK(bp_store_refresh(r, &pub));
        CHECK_EQ(read_tail_payload(r), sizeof pay);
    }
    CHECK_EQ(pub, 601);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(r, &st));
    CHECK(st.segments > 30);
    CHECK(open_fds() <= base + 4);
    CHECK_OK(bp_store_close(r));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

/* ------------------------------------------------ verify beside a live writer */

/* What a verify's progress callback does to the store, once per pass (the first call, made
 * before the first segment is read): what a writer in this or another process may do while
 * verify reads the files by name. */
enum { V_SEAL, V_CLOSE, V_COMPACT, V_COMPACT_EVERY };
typedef struct vmeddle {
    bp_store *w;
    int what, passes;
    int64_t keep; /* keep_last of the compactions */
} vmeddle;

static void meddle(void *ctx, uint64_t done, uint64_t total) {
    vmeddle *m = ctx;
    (void)total;
    if (done) return;
    if (m->passes++ && m->what != V_COMPACT_EVERY) return;
    char pay[200];
    memset(pay, 'v', sizeof pay);
    bp_status rc = BP_OK;
    if (m->what == V_SEAL || m->what == V_CLOSE) /* more than a segment: the active one seals */
        for (int i = 0; i < 60 && !rc; i++)
            rc = bp_append(m->w, NULL, "acct:v", "bank", 0x1001, pay, sizeof pay);
    if (m->what == V_CLOSE && !rc) {
        rc = bp_store_close(m->w); /* writes index.ckpt: events past the reader's view */
        m->w = NULL;
    }
    if (m->what == V_COMPACT || m->what == V_COMPACT_EVERY) {
        for (int i = 0; i < 30 && !rc; i++)
            rc = bp_append(m->w, NULL, "acct:v", "bank", 0x1001, pay, sizeof pay);
        bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
        co.keep_last = (uint64_t)m->keep--; /* (each one removes events: the files change) */
        bp_compact_report cr = BP_COMPACT_REPORT_INIT;
        if (!rc) rc = bp_compact(m->w, &cr, &co);
    }
    if (rc) fprintf(stderr, "meddle: %s\n", bp_last_error());
}

static bp_status verify_meddled(bp_store *s, vmeddle *m, bp_verify_report *rep) {
    bp_verify_options o = BP_VERIFY_OPTIONS_INIT;
    o.progress = meddle;
    o.progress_ctx = m;
    *rep = (bp_verify_report)BP_VERIFY_REPORT_INIT;
    return bp_store_verify(s, rep, &o);
}

/* A verify checks what its handle's view holds, beside a writer that goes on: a segment that
 * was the newest when it began and that the writer has sealed since (its footer and index
 * file list events past the view) is checked up to the view's end, by the writer's own handle
 * and by a reader; an index.ckpt that a writer's close wrote meanwhile, up to the view too. The
 * old verify found "SIDX footer lists N events, the segment holds M" and "index.ckpt: N
 * record(s) do not match the segments" there: false damage. */
static void test_verify_beside_a_live_writer(void) {
    const char *dir = t_dir("mproc-verify");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[200];
    memset(pay, 'v', sizeof pay);
    for (int i = 0; i < 50; i++)
        CHECK_OK(bp_append(w, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay));
    bp_verify_report rep;
    vmeddle m = {w, V_SEAL, 0, 0};
    CHECK_OK(verify_meddled(w, &m, &rep)); /* the writer's own handle */
    CHECK_EQ(rep.events, 50);
    CHECK_EQ(rep.problems, 0);
    bp_store *f;
    CHECK_OK(t_open_try(&f, dir, &READER));
    m = (vmeddle){w, V_SEAL, 0, 0};
    CHECK_OK(verify_meddled(f, &m, &rep)); /* a reader */
    CHECK_EQ(rep.events, 110);
    CHECK_EQ(rep.problems, 0);
    m = (vmeddle){w, V_CLOSE, 0, 0};
    CHECK_OK(verify_meddled(f, &m, &rep));
    CHECK(m.w == NULL);
    CHECK_EQ(rep.events, 110); /* (the reader's view: it did not refresh) */
    CHECK_EQ(rep.problems, 0);
    CHECK_OK(bp_store_close(f));
    t_rmdir(dir);
}

/* A reader's verify beside a writer that compacts while it reads the files by name: what it
 * read after the files changed under its view is not damage; it verifies again on a new view
 * (clean here, the events the compaction kept). A writer that compacts during every pass:
 * BP_EBUSY, "run it again", never a false BP_ECORRUPT. */
static void test_verify_beside_a_compaction(void) {
    const char *dir = t_dir("mproc-verify-compact");
    bp_store *w = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[200];
    memset(pay, 'c', sizeof pay);
    for (int i = 0; i < 90; i++)
        CHECK_OK(bp_append(w, NULL, i % 3 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay));
    bp_store *f;
    CHECK_OK(t_open_try(&f, dir, &READER));
    bp_verify_report rep;
    vmeddle m = {w, V_COMPACT, 0, 20};
    CHECK_OK(verify_meddled(f, &m, &rep));
    CHECK_EQ(m.passes, 2);
    CHECK_EQ(rep.problems, 0);
    CHECK_EQ(rep.events, 20 + 20 + 20); /* each entity's newest 20 */
    m = (vmeddle){w, V_COMPACT_EVERY, 0, 15};
    CHECK_EQ(verify_meddled(f, &m, &rep), BP_EBUSY);
    CHECK_EQ(m.passes, 3);
    CHECK(strstr(bp_last_error(), "run it again") != NULL);
    CHECK_OK(bp_store_verify(f, &rep, NULL)); /* and once the writer lets it be: clean */
    CHECK_EQ(rep.problems, 0);
    CHECK_OK(bp_store_close(f));
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_writer_and_readers_counted);
    RUN(test_read_only_writes_nothing);
    RUN(test_reader_moves_to_compacted_files);
    RUN(test_reader_newest_segment_replaced);
    RUN(test_refresh_beside_a_compaction);
    RUN(test_refresh_reports_a_view_it_cannot_make);
    RUN(test_refresh_reports_damage_it_meets);
    RUN(test_verify_beside_a_live_writer);
    RUN(test_verify_beside_a_compaction);
    RUN(test_writer_figures_seen_by_readers);
    RUN(test_writer_delivery_seen_by_readers);
    RUN(test_reader_threads_beside_compactions);
    RUN(test_durable_visible_once_synced);
    RUN(test_follower_descriptors_bounded);
    RUN(test_readers_beside_a_killed_writer);
    T_DONE();
}
