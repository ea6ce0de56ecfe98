/* Crash test: a child process appends in a loop (single durable appends,
 * NO_SYNC appends, atomic batches (durable, BP_NO_SYNC or BP_DURABLE_EVERY), visibility fences
 * committed, on a store with small segments so
 * that rotations and footers happen; every 37 operations it closes the store, writing the
 * checkpoint, and opens it again) and reports each receipt to the parent through
 * a pipe the moment it gets it. The parent SIGKILLs the child at a random
 * moment, reopens the store and checks that:
 *   - every event whose receipt the parent saw is present and byte-identical
 *     (id, hash, entity, kind, payload); a process crash loses nothing that
 *     was acknowledged, synced or not (the OS still has it);
 *   - bp_store_verify is clean: hashes, per-entity chains, gap-free clocks,
 *     dense global sequence;
 *   - batches and fences are all-or-nothing.
 * Then the next child carries on in the same store.
 *
 * test_torn_unsynced_batch: an unsynced batch (BP_NO_SYNC: no fdatasync; the store abandoned
 * as a crash leaves it) is torn at every frame boundary and inside every frame, the rest of
 * the file cut or zeroed (what a power loss leaves); every open finds the batch whole or not
 * at all, and the store verifies and takes appends that continue the chains.
 *
 * BP_CRASH_KILLS (default 150) sets the number of kills, BP_CRASH_SEED the
 * random seed (printed, so a failure can be replayed). The "torture" CTest
 * label runs a long version. */
#include "t.h"
#include "t_six.h"

#include "bp_testing.h"
#include "format/format.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define N_ENTITIES 7

/* One receipt as the child reports it; < PIPE_BUF so writes are atomic. */
typedef struct rec {
    uint64_t seq;
    uint64_t seed; /* payload generator seed; also encodes entity and kind */
    uint8_t id[16];
    uint8_t hash[32];
    uint32_t batch_count;
    uint32_t durable;
} rec;

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The payload, entity and kind of an event are a function of its seed. */
static size_t make_payload(uint64_t seed, uint8_t *buf) {
    uint64_t x = seed;
    size_t len = (size_t)(splitmix(&x) % 700);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)splitmix(&x);
    return len;
}
static void make_entity(uint64_t seed, char out[32]) {
    snprintf(out, 32, "crash:%u", (unsigned)(seed % N_ENTITIES));
}
static uint16_t make_kind(uint64_t seed) {
    return (uint16_t)(0x1000 + (seed >> 8) % 16);
}

/* The stores of these tests: 16 KiB segments, with the open event. */
static const t_open_opts OPTS = {.segment_size = 16 << 10, .open_event = true};

static void put_rec(int fd, const bp_receipt *r, uint64_t seed, uint32_t batch_count) {
    rec x = {0};
    x.seq = r->global_seq;
    x.seed = seed;
    memcpy(x.id, r->event_id.b, 16);
    memcpy(x.hash, r->event_hash.b, 32);
    x.batch_count = batch_count;
    x.durable = r->durability == BP_DUR_SYNC;
    if (write(fd, &x, sizeof x) != (ssize_t)sizeof x) _exit(3);
}

/* The child: append until killed. Exits 2 on any unexpected error. */
static void child(const char *dir, int fd, uint64_t round) {
    bp_store *s;
    if (t_open_try(&s, dir, &OPTS) != BP_OK) {
        fprintf(stderr, "child open: %s\n", bp_last_error());
        _exit(2);
    }
    uint8_t buf[1024];
    uint64_t rng = round * 0x1000003;
    for (uint64_t i = 0;; i++) {
        if (i % 37 ==
            36) { /* close (final sync, checkpoint) and open again: kills land there too */
            if (bp_store_close(s) != BP_OK || t_open_try(&s, dir, &OPTS) != BP_OK) {
                fprintf(stderr, "child close/reopen: %s\n", bp_last_error());
                _exit(2);
            }
        }
        uint64_t pick = splitmix(&rng) % 10;
        if (pick < 2) { /* an atomic batch of 2..4 events */
            bp_batch_item items[4];
            uint64_t seeds[4];
            uint8_t bufs[4][1024];
            char ents[4][32];
            size_t n = 2 + (size_t)(splitmix(&rng) % 3);
            for (size_t k = 0; k < n; k++) {
                seeds[k] = (round << 32) | (i << 3) | k;
                make_entity(seeds[k], ents[k]);
                items[k] = (bp_batch_item){
                    ents[k], "crash", make_kind(seeds[k]), bufs[k], make_payload(seeds[k], bufs[k]),
                    NULL};
            }
            bp_receipt rs[4];
            t_receipts(rs, sizeof rs / sizeof rs[0]);
            if (pick == 1) { /* the same through a visibility fence */
                bp_fence *f;
                bp_ticket *t[4];
                if (bp_fence_begin(s, &f) != BP_OK) _exit(2);
                for (size_t k = 0; k < n; k++)
                    if (bp_fence_append(f, &t[k], items[k].entity, items[k].scope, items[k].kind,
                                        items[k].payload, items[k].len, NULL) != BP_OK)
                        _exit(2);
                if (bp_fence_commit(f) != BP_OK) {
                    fprintf(stderr, "child fence: %s\n", bp_last_error());
                    _exit(2);
                }
                for (size_t k = 0; k < n; k++) {
                    if (bp_ticket_wait(t[k], &rs[k], 0) != BP_OK) _exit(2);
                    bp_ticket_free(t[k]);
                }
                bp_fence_free(f);
            } else {
                /* durable, unsynced, or synced every few events: atomic either way */
                bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
                if (i % 3 == 1) bo.durability = BP_NO_SYNC;
                if (i % 3 == 2) bo.durability = BP_DURABLE_EVERY(8, 0);
                if (bp_append_batch_ex(s, rs, items, n, &bo) != BP_OK) {
                    fprintf(stderr, "child batch: %s\n", bp_last_error());
                    _exit(2);
                }
            }
            for (size_t k = 0; k < n; k++)
                put_rec(fd, &rs[k], seeds[k], (uint32_t)n);
        } else {
            uint64_t seed = (round << 32) | (i << 3);
            char ent[32];
            make_entity(seed, ent);
            size_t len = make_payload(seed, buf);
            bp_append_options o = BP_APPEND_OPTIONS_INIT;
            if (pick == 9) o.durability = BP_NO_SYNC; /* acknowledged, not synced */
            bp_receipt r = BP_RECEIPT_INIT;
            if (bp_append_ex(s, &r, ent, "crash", make_kind(seed), buf, len, &o) != BP_OK) {
                fprintf(stderr, "child append: %s\n", bp_last_error());
                _exit(2);
            }
            put_rec(fd, &r, seed, 0);
        }
    }
}

typedef struct seen {
    rec *v;
    size_t n, cap;
} seen;

static void seen_add(seen *S, const rec *r) {
    if (S->n == S->cap) {
        S->cap = S->cap ? S->cap * 2 : 1024;
        S->v = realloc(S->v, S->cap * sizeof *S->v);
        if (!S->v) exit(2);
    }
    S->v[S->n++] = *r;
}

/* Check the reopened store against the receipts seen from index `from` on
 * (the caller passes 0 now and then to re-check them all). */
static void check_store(const char *dir, const seen *S, size_t from, uint64_t *events_out) {
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &OPTS));
    /* the writable open wrote every sealed segment's index file that a crash or fault left
     * missing or stale; verify below checks each against the frames */
    CHECK(t_six_all_current(dir));
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status vrc = bp_store_verify(s, &vr, NULL);
    if (vrc != BP_OK) fprintf(stderr, "verify: %s\n", vr.first_problem);
    CHECK_OK(vrc);
    CHECK_EQ(vr.problems, 0);
    uint8_t buf[1024];
    for (size_t i = from; i < S->n; i++) {
        const rec *r = &S->v[i];
        bp_event *ev;
        bp_id id;
        memcpy(id.b, r->id, 16);
        bp_status rc = bp_get(s, &ev, &id);
        if (rc != BP_OK)
            fprintf(stderr, "acknowledged event seq %llu (durable %u) missing\n",
                    (unsigned long long)r->seq, r->durable);
        CHECK_OK(rc);
        char ent[32];
        make_entity(r->seed, ent);
        size_t len = make_payload(r->seed, buf);
        bool same = ev->global_seq == r->seq && memcmp(ev->event_hash.b, r->hash, 32) == 0 &&
                    strcmp(ev->entity, ent) == 0 && ev->kind == make_kind(r->seed) &&
                    ev->payload_len == len && memcmp(ev->payload, buf, len) == 0 &&
                    ev->batch_count == r->batch_count;
        bp_event_free(ev);
        CHECK(same);
    }
    /* batches are all-or-nothing; clocks are gap-free per entity */
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &(bp_region)BP_REGION_INIT, BP_READ_FULL));
    const bp_event *e;
    uint64_t batch_id = 0, in_batch = 0, want = 0, n = 0;
    uint64_t clocks[N_ENTITIES] = {0};
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        n++;
        if (in_batch && e->batch_id != batch_id) break;
        if (e->batch_count) {
            if (!in_batch) {
                batch_id = e->batch_id;
                want = e->batch_count;
            }
            if (++in_batch == want) in_batch = 0;
        }
        if (strncmp(e->entity, "crash:", 6) == 0) {
            unsigned k = (unsigned)atoi(e->entity + 6);
            if (k >= N_ENTITIES || e->clock != ++clocks[k]) break;
        }
    }
    bp_iter_free(it);
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(in_batch, 0);
    *events_out = n;
    CHECK_OK(bp_store_close(s));
}

static void test_kill_loop(void) {
    const char *dir = t_dir("crash");
    const char *ek = getenv("BP_CRASH_KILLS");
    const char *es = getenv("BP_CRASH_SEED");
    int kills = ek ? atoi(ek) : 150;
    uint64_t seed = es ? strtoull(es, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    fprintf(stderr, "  BP_CRASH_SEED=%llu BP_CRASH_KILLS=%d\n", (unsigned long long)seed, kills);
    uint64_t rng = seed;
    seen S = {0};
    size_t checked = 0;
    uint64_t events = 0, durable = 0, nosync = 0;
    for (int round = 1; round <= kills; round++) {
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child(dir, p[1], (uint64_t)round);
            _exit(0);
        }
        close(p[1]);
        /* let it run 0..25 ms after its first receipt, then kill it mid-whatever */
        rec r;
        size_t got = 0;
        uint8_t *rp = (uint8_t *)&r;
        bool started = false;
        uint64_t wait_us = splitmix(&rng) % 25000;
        struct timespec t0 = {0, 0};
        for (;;) {
            struct pollfd pf = {p[0], POLLIN, 0};
            int pr = poll(&pf, 1, 5);
            if (pr > 0) {
                ssize_t k = read(p[0], rp + got, sizeof r - got);
                if (k <= 0) break; /* child died on its own */
                got += (size_t)k;
                if (got == sizeof r) {
                    seen_add(&S, &r);
                    got = 0;
                    if (!started) {
                        started = true;
                        clock_gettime(CLOCK_MONOTONIC, &t0);
                    }
                }
            }
            if (started) {
                struct timespec t1;
                clock_gettime(CLOCK_MONOTONIC, &t1);
                uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
                              (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000);
                if (us >= wait_us) break;
            }
        }
        kill(pid, SIGKILL);
        /* receipts already in the pipe were seen by the parent too */
        for (;;) {
            ssize_t k = read(p[0], rp + got, sizeof r - got);
            if (k <= 0) break;
            got += (size_t)k;
            if (got == sizeof r) {
                seen_add(&S, &r);
                got = 0;
            }
        }
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* this round's receipts every time; all of them every 25 rounds and at the end */
        bool all = round % 25 == 0 || round == kills;
        check_store(dir, &S, all ? 0 : checked, &events);
        if (all) t_check_loss_refused(dir, &OPTS); /* check_store closed it cleanly */
        checked = S.n;
        if (t_failures) {
            fprintf(stderr, "  failed after kill %d (BP_CRASH_SEED=%llu)\n", round,
                    (unsigned long long)seed);
            break;
        }
    }
    for (size_t i = 0; i < S.n; i++)
        S.v[i].durable ? durable++ : nosync++;
    fprintf(stderr,
            "  %d kills, %zu acknowledged events checked (%llu durable, %llu not synced), %llu in "
            "store\n",
            kills, S.n, (unsigned long long)durable, (unsigned long long)nosync,
            (unsigned long long)events);
    CHECK(S.n > (size_t)kills); /* the children made progress */
    free(S.v);
    if (!t_failures) t_rmdir(dir);
}

/* ------------------------------------------------------- a torn unsynced batch */

#define TORN_BEFORE 3 /* durable events before the batch */
#define TORN_BATCH 5  /* events of the unsynced batch */

static const char *torn_entity(int k) { /* the batch writes "t:0" twice: a chain inside it */
    static const char *names[TORN_BATCH] = {"t:0", "t:1", "t:0", "t:2", "t:3"};
    return names[k];
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long long n = file_size(path);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = b && n >= 0 ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

/* Where the frames of a segment's bytes end: the writer fills zeros ahead of them. */
static size_t frames_end(const uint8_t *b, size_t len) {
    size_t pos = BP_SEG_HEADER_SIZE;
    while (pos + BP_FRAME_PREFIX <= len) {
        uint32_t body = bp_get_be32(b + pos);
        if (!body || pos + BP_FRAME_PREFIX + body > len) break;
        pos += BP_FRAME_PREFIX + body;
    }
    return pos;
}

/* A copy of the crashed store in work, its segment the first cut bytes of seg (then zeros up
 * to len when zero_fill: a power loss that kept the file's size but not its last pages). */
static void torn_copy(const char *pristine, const char *work, const uint8_t *seg, size_t len,
                      size_t cut, bool zero_fill) {
    char cmd[3000], path[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", work, pristine, work);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/segments/000001.fbat", work);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(seg, 1, cut, f) == cut);
    for (size_t i = cut; zero_fill && i < len; i++)
        CHECK(fputc(0, f) == 0);
    CHECK(fclose(f) == 0);
}

static void test_torn_unsynced_batch(void) {
    const char *dir = t_dir("torn");
    char pristine[1100], work[1100], seg[1100];
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(seg, sizeof seg, "%s/segments/000001.fbat", pristine);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, pristine, &o));
    bp_receipt before[TORN_BEFORE] = {BP_RECEIPT_INIT}, rs[TORN_BATCH] = {BP_RECEIPT_INIT};
    t_receipts(before, sizeof before / sizeof before[0]);
    t_receipts(rs, sizeof rs / sizeof rs[0]);
    for (int i = 0; i < TORN_BEFORE; i++) /* durable: synced before the batch */
        CHECK_OK(bp_append(s, &before[i], torn_entity(i % 2), "torn", 0x1001, "before", 6));
    size_t slen = 0;
    uint8_t *sbytes = read_file(seg, &slen);
    long long start = sbytes ? (long long)frames_end(sbytes, slen) : -1;
    free(sbytes);
    bp_batch_item items[TORN_BATCH];
    char payloads[TORN_BATCH][64];
    for (int k = 0; k < TORN_BATCH; k++) {
        int len =
            snprintf(payloads[k], sizeof payloads[k], "batch item %d of an unsynced batch", k);
        items[k] = (bp_batch_item){torn_entity(k), "torn", 0x1002, payloads[k], (size_t)len, NULL};
    }
    bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
    bo.durability = BP_NO_SYNC;
    CHECK_OK(bp_append_batch_ex(s, rs, items, TORN_BATCH, &bo));
    for (int k = 0; k < TORN_BATCH; k++)
        CHECK_EQ(rs[k].durability, BP_DUR_NONE);
    bp__store_crash(s); /* no sync, no checkpoint: what a crash leaves */
    size_t phys = 0;    /* the file's size: its frames, then the zeros written ahead of them */
    uint8_t *bytes = read_file(seg, &phys);
    size_t len = bytes ? frames_end(bytes, phys) : 0;
    CHECK(phys > len); /* durable appends fill zeros ahead */
    CHECK(bytes != NULL && start > 0 && (long long)len > start);
    if (!bytes || start <= 0 || (long long)len <= start) {
        free(bytes);
        return;
    }
    /* the batch's frame boundaries */
    size_t bound[TORN_BATCH + 1];
    bound[0] = (size_t)start;
    for (int k = 0; k < TORN_BATCH; k++)
        bound[k + 1] = bound[k] + BP_FRAME_PREFIX + bp_get_be32(bytes + bound[k]);
    CHECK_EQ(bound[TORN_BATCH], len); /* one write: the batch ends the file */
    int cases = 0;
    for (int zero = 0; zero < 2; zero++) {
        for (int k = 0; k <= TORN_BATCH; k++) {
            /* at the boundary before frame k, and inside it: its first byte, its middle, all
             * but its last byte */
            size_t cuts[4] = {bound[k], 0, 0, 0};
            int nc = 1;
            if (k < TORN_BATCH) {
                size_t flen = bound[k + 1] - bound[k];
                cuts[nc++] = bound[k] + 1;
                cuts[nc++] = bound[k] + flen / 2;
                cuts[nc++] = bound[k + 1] - 1;
            }
            for (int c = 0; c < nc; c++) {
                size_t cut = cuts[c];
                bool whole = cut == len;
                if (whole && zero) continue; /* nothing to zero */
                torn_copy(pristine, work, bytes, phys, cut, zero != 0);
                cases++;
                CHECK_OK(bp_store_open(&s, work, &o));
                if (!s) continue;
                bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
                bp_store_open_report_get(s, &rep);
                bp_store_stats st = BP_STORE_STATS_INIT;
                CHECK_OK(bp_store_stats_get(s, &st));
                uint64_t want = TORN_BEFORE + (whole ? TORN_BATCH : 0);
                CHECK_EQ(st.events, want);
                CHECK_EQ(rep.events, want);
                /* never part of the batch: every event of it there, or none */
                for (int j = 0; j < TORN_BATCH; j++) {
                    bp_event *ev = NULL;
                    bp_status grc = bp_get(s, &ev, &rs[j].event_id);
                    CHECK_EQ(grc, whole ? BP_OK : BP_ENOTFOUND);
                    if (ev) CHECK(memcmp(ev->event_hash.b, rs[j].event_hash.b, 32) == 0);
                    bp_event_free(ev);
                }
                for (int j = 0; j < TORN_BEFORE; j++) {
                    bp_event *ev = NULL;
                    CHECK_OK(bp_get(s, &ev, &before[j].event_id));
                    bp_event_free(ev);
                }
                if (!whole) { /* cut whole, what was torn and the rest (zeros) moved aside */
                    CHECK_EQ(rep.frames_cut, (uint64_t)k);
                    if (!zero) {
                        CHECK_EQ(rep.bytes_cut, (uint64_t)(cut - (size_t)start));
                    } else { /* the torn frame at most, never the zeros past it */
                        size_t lo = cut;
                        while (lo > (size_t)start && !bytes[lo - 1])
                            lo--;
                        size_t hi = k < TORN_BATCH ? bound[k + 1] : len;
                        CHECK(rep.bytes_cut >= lo - (size_t)start);
                        CHECK(rep.bytes_cut <= hi - (size_t)start);
                        if (cut == bound[k]) CHECK_EQ(rep.bytes_cut, cut - (size_t)start);
                    }
                    char p[1200];
                    snprintf(p, sizeof p, "%s/segments/000001.fbat", work);
                    CHECK_EQ(file_size(p), start);
                }
                bp_verify_report vr = BP_VERIFY_REPORT_INIT;
                CHECK_OK(bp_store_verify(s, &vr, NULL));
                /* the chains go on from what is there */
                bp_receipt r = BP_RECEIPT_INIT;
                CHECK_OK(bp_append(s, &r, "t:0", "torn", 0x1003, "after", 5));
                CHECK_EQ(r.clock, whole ? 5u : 3u); /* t:0: 2 before, 2 in the batch */
                CHECK_EQ(r.global_seq, want + 1);
                CHECK_OK(bp_store_verify(s, &vr, NULL));
                CHECK_OK(bp_store_close(s));
                CHECK_OK(bp_store_open(&s, work, &o)); /* and reopen clean */
                if (s) {
                    CHECK_OK(bp_store_stats_get(s, &st));
                    CHECK_EQ(st.events, want + 1);
                    CHECK_OK(bp_store_close(s));
                }
            }
        }
    }
    CHECK_EQ(cases, 2 * (4 * TORN_BATCH + 1) - 1);
    free(bytes);
    if (!t_failures) t_rmdir(dir);
}

/* ------------------------------------------------------- an import killed midway */

/* Every batch of dir's store is whole (its events in a row, batch_count of them); *n gets
 * the events. */
static void check_batches_whole(const char *dir, uint64_t *n) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    bp_store *s;
    *n = 0;
    CHECK_OK(bp_store_open(&s, dir, &o));
    if (!s) return;
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &(bp_region)BP_REGION_INIT, BP_READ_INDEX_ONLY));
    const bp_event *e;
    uint64_t batch_id = 0, in_batch = 0, want = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        (*n)++;
        if (in_batch && e->batch_id != batch_id) break;
        if (e->batch_count) {
            if (!in_batch) {
                batch_id = e->batch_id;
                want = e->batch_count;
            }
            if (++in_batch == want) in_batch = 0;
        }
    }
    bp_iter_free(it);
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(in_batch, 0);
    CHECK_OK(bp_store_close(s));
}

/* Import the export text into dir (no open event); _exit(0) when done, 2 on an error. */
static void import_child(const char *dir, const char *text) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    bp_store *s;
    bp_importer *imp;
    if (bp_store_open(&s, dir, &o) || bp_import_begin(s, &imp)) _exit(2);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (bp_import_line(imp, p, len)) {
            fprintf(stderr, "import: %s\n", bp_last_error());
            _exit(2);
        }
        p += len;
    }
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    if (bp_import_end(imp, &rep) || bp_store_close(s)) _exit(2);
    _exit(0);
}

/* An import (its batches unsynced, one sync at the end) killed at random moments: every
 * reopen finds whole batches only and verifies; importing again resumes, and the result is the
 * source's export, byte for byte. */
static void test_kill_import(void) {
    const char *dir = t_dir("crash-import");
    char src[1100], dst[1100];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, src, &o));
    if (!s) return;
    uint8_t buf[1024];
    char ents[6][32];
    bp_batch_item items[6];
    bp_batch_options bo = BP_BATCH_OPTIONS_INIT;
    bo.durability = BP_NO_SYNC;
    for (uint64_t i = 0; i < 1500; i++) {
        size_t n = 1 + (size_t)(i % 6); /* a single append, or a batch of 2..6 */
        for (size_t k = 0; k < n; k++) {
            uint64_t seed = (i << 3) | k;
            make_entity(seed, ents[k]);
            items[k] = (bp_batch_item){
                ents[k], "import", make_kind(seed), buf, make_payload(seed, buf) / 4, NULL};
        }
        CHECK_OK(bp_append_batch_ex(s, NULL, items, n, &bo));
    }
    char *text = t_export(s, false);
    CHECK(text != NULL);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    uint64_t total = st.events;
    CHECK_OK(bp_store_close(s));
    if (!text) return;
    uint64_t rng = (uint64_t)time(NULL) ^ (uint64_t)getpid(), last = 0;
    int killed = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) import_child(dst, text);
        usleep((useconds_t)(splitmix(&rng) % 40000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status))
            killed++;
        else
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        uint64_t n;
        check_batches_whole(dst, &n);
        CHECK(n >= last); /* a process crash takes back nothing imported */
        last = n;
    }
    fprintf(stderr, "  %d of 8 imports killed midway, %llu of %llu events in\n", killed,
            (unsigned long long)last, (unsigned long long)total);
    /* resume to the end: the same events, the same bytes */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) import_child(dst, text);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(bp_store_open(&s, dst, &o));
    if (s) {
        char *again = t_export(s, false);
        CHECK(again != NULL && strcmp(again, text) == 0);
        free(again);
        CHECK_OK(bp_store_close(s));
    }
    free(text);
    if (!t_failures) t_rmdir(dir);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_kill_import);
    RUN(test_torn_unsynced_batch);
    RUN(test_kill_loop);
    T_DONE();
}
