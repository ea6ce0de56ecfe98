/* Index pieces of the active segment (src/store/piece.c, doc/FORMAT.md "Pieces"): a reader of
 * a live writer's store opens with the writer's piece instead of indexing the unsealed
 * segment itself, and answers exactly as a reader that scanned it: every read path (export,
 * streams, heads, entity listing, scope and kind queries, gets by id) compared against a
 * reader with the piece taken away. A piece that does not fit what the files hold (the other
 * file of a pair, damaged bytes, a power cut that took frames it lists) is passed over. A
 * follower swaps its piece for the segment's index file once the writer seals it. A writer
 * whose piece write fails goes on appending. */
#include "t.h"
#include "bp_testing.h"

#include <stdarg.h>
#include <unistd.h>
#include <sys/stat.h>

enum { ENTS = 40 };

/* A check that goes on (in functions that return a value). */
#define OK(expr)                                                                                   \
    do {                                                                                           \
        bp_status _r = (expr);                                                                     \
        t_checks++;                                                                                \
        if (_r != BP_OK) {                                                                         \
            fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #expr, bp_strerror(_r),    \
                    bp_last_error());                                                              \
            t_failures++;                                                                          \
        }                                                                                          \
    } while (0)

static const t_open_opts WRITER = {.segment_size = 256 << 10, .durability = BP_NO_SYNC};
static const t_open_opts READER = {.read_only = true, .no_create = true};

static uint16_t g_cat = 0x1000; /* the kinds' category (kinds g_cat + 1, g_cat + 2) */

/* n events: entities e:0..ENTS-1 and, every 9th, a new one n:K; scopes s0/s1, kinds 0x1001 /
 * 0x1002, every 4th in a batch of 3, every 5th with an idempotency key. */
static void append_some(bp_store *w, unsigned n, unsigned seed) {
    uint8_t pay[200];
    for (unsigned i = 0; i < n;) {
        char ent[32], key[32];
        unsigned k = seed + i;
        if (k % 9 == 0)
            snprintf(ent, sizeof ent, "n:%u", k);
        else
            snprintf(ent, sizeof ent, "e:%u", k % ENTS);
        memset(pay, (int)k, sizeof pay);
        const char *scope = k % 2 ? "s1" : "s0";
        if (k % 4 == 0 && i + 3 <= n) {
            bp_batch_item items[3];
            for (int j = 0; j < 3; j++)
                items[j] = (bp_batch_item){j ? "e:1" : ent,   scope, (uint16_t)(g_cat + 2), pay,
                                           50u + (unsigned)j, NULL};
            CHECK_OK(bp_append_batch(w, NULL, items, 3));
            i += 3;
            continue;
        }
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        if (k % 5 == 0) {
            snprintf(key, sizeof key, "key:%u", k);
            ao.idempotency_key = key;
        }
        CHECK_OK(bp_append_ex(w, NULL, ent, scope, (uint16_t)(g_cat + 1), pay, 20u + k % 180, &ao));
        i++;
    }
}

static unsigned long long fnv(const char *p, size_t n) {
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* A growing text. */
typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (t->n + (size_t)k + 1 > t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, buf, (size_t)k + 1);
    t->n += (size_t)k;
}

static void put_iter(text *t, bp_iter *it, bool get, bp_store *s) {
    const bp_event *ev;
    uint64_t k = 0;
    while (bp_iter_next(it, &ev) == BP_OK) {
        put(t, " %llu/%llu/%s", (unsigned long long)ev->global_seq, (unsigned long long)ev->clock,
            ev->entity);
        if (get && k++ % 7 == 0) { /* by id, through the index (or the piece's IDS) */
            bp_event *g = NULL;
            bp_id id = ev->event_id;
            put(t, "=%llu", bp_get(s, &g, &id) == BP_OK ? (unsigned long long)g->global_seq : 0);
            bp_event_free(g);
        }
    }
    bp_iter_free(it);
    put(t, "\n");
}

/* Everything a reader answers, as text. */
static char *digest(bp_store *s) {
    text t = {0};
    char *ex = t_export(s, false);
    put(&t, "export %zu %llu\n", ex ? strlen(ex) : 0, ex ? fnv(ex, strlen(ex)) : 0);
    free(ex);
    bp_entity_info info[512];
    info[0] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    size_t n = 0;
    OK(bp_entities_list(s, NULL, NULL, info, 512, &n));
    for (size_t i = 0; i < n; i++) {
        uint64_t clock = 0;
        bp_hash h;
        memset(&h, 0, sizeof h);
        OK(bp_entity_head(s, &clock, &h, info[i].name));
        put(&t, "%s %llu %llu %llu %02x%02x%02x:", info[i].name, (unsigned long long)info[i].events,
            (unsigned long long)info[i].clock, (unsigned long long)clock, h.b[0], h.b[1], h.b[31]);
        bp_iter *it;
        OK(bp_stream(s, &it, info[i].name, BP_READ_INDEX_ONLY));
        put_iter(&t, it, false, s);
    }
    const char *scopes[] = {"s0", "s1"};
    for (int k = 0; k < 2; k++) {
        bp_iter *it;
        OK(bp_by_scope(s, &it, scopes[k], BP_READ_INDEX_ONLY));
        put(&t, "scope %s:", scopes[k]);
        put_iter(&t, it, true, s);
    }
    for (uint16_t kind = 0x1001; kind <= 0x2002; kind += kind == 0x1002 ? 0x0fff : 1) {
        bp_iter *it;
        OK(bp_by_kind(s, &it, kind, BP_READ_INDEX_ONLY));
        put(&t, "kind %x:", kind);
        put_iter(&t, it, false, s);
    }
    /* filtered queries: a tier segment whose file says none of its events can match is
     * passed over (for the piece's segment: only up to the piece) */
    for (int cat = 1; cat <= 2; cat++) {
        bp_region rg = BP_REGION_INIT;
        rg.category = cat;
        bp_iter *it;
        OK(bp_query(s, &it, &rg, BP_READ_INDEX_ONLY));
        put(&t, "category %d:", cat);
        put_iter(&t, it, false, s);
    }
    return t.p;
}

static char g_path[4200];
static const char *path_in(const char *dir, const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", dir, name);
    return g_path;
}

/* The newest segment's piece file (NNNNNN.pfidx) into out, false when there is none. */
static bool piece_path(const char *dir, char *out, size_t cap) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s/segments/*.pfidx 2>/dev/null | tail -1", dir);
    FILE *p = popen(cmd, "r");
    bool ok = p && fgets(out, (int)cap, p) != NULL;
    if (p) pclose(p);
    if (ok) out[strcspn(out, "\n")] = 0;
    return ok && out[0];
}

static void copy_file(const char *from, const char *to) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CHECK_EQ(system(cmd), 0);
}

/* A reader's digest and how many frames its open scanned. */
static char *read_it(const char *dir, uint64_t *scanned) {
    bp_store *r = t_open(dir, &READER);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    OK(bp_store_open_report_get(r, &rep));
    *scanned = rep.frames_scanned;
    char *d = digest(r);
    OK(bp_store_close(r));
    return d;
}

/* The same with entities.part moved away: the reader scans the newest segment whole. */
static char *read_without_piece(const char *dir, uint64_t *scanned) {
    char aside[4200];
    snprintf(aside, sizeof aside, "%s/part.aside", dir);
    bool had = rename(path_in(dir, "entities.part"), aside) == 0;
    char *d = read_it(dir, scanned);
    if (had && rename(aside, path_in(dir, "entities.part"))) t_failures++;
    return d;
}

static void test_reader_with_a_piece_reads_the_same(void) {
    const char *dir = t_dir("piece-same");
    bp__piece_bytes = 16 << 10;
    bp_store *w = t_open(dir, &WRITER);
    append_some(w, 2500, 0); /* some sealed segments, and the newest unsealed */
    CHECK_OK(bp_store_sync(w));
    g_cat = 0x2000;             /* (kinds of a category the piece does not have) */
    append_some(w, 40, 100000); /* past the last piece: scanned */
    g_cat = 0x1000;
    char pf[4200];
    CHECK(piece_path(dir, pf, sizeof pf));
    uint64_t with = 0, without = 0;
    char *a = read_it(dir, &with);
    char *b = read_without_piece(dir, &without);
    CHECK(a && b && strcmp(a, b) == 0);
    CHECK(with < without);          /* the piece stood for frames a reader scanned */
    CHECK(with >= 40);              /* what followed the piece: scanned */
    CHECK(strstr(a, "n:") != NULL); /* new entities in the piece and past it */
    free(a);
    free(b);
    /* a reader writes nothing: the piece is the writer's */
    struct stat st;
    CHECK_EQ(stat(pf, &st), 0);
    CHECK_OK(bp_store_close(w));
    /* after the writer's close: the same answers (a piece of a segment left unsealed stays
     * true of it; the next writer removes it) */
    a = read_it(dir, &with);
    b = read_without_piece(dir, &without);
    CHECK(a && b && strcmp(a, b) == 0);
    free(a);
    free(b);
    bp__piece_bytes = 8u << 20;
    t_rmdir(dir);
}

/* Readers beside a writer with pieces that do not fit: the same answers as without. */
static void test_piece_that_does_not_fit_is_passed_over(void) {
    const char *dir = t_dir("piece-misfit");
    bp__piece_bytes = 16 << 10;
    bp_store *w = t_open(dir, &WRITER);
    append_some(w, 2000, 7);
    CHECK_OK(bp_store_sync(w));
    char pf[4200], old_pf[4200], old_part[4200];
    CHECK(piece_path(dir, pf, sizeof pf));
    snprintf(old_pf, sizeof old_pf, "%s/old.pfidx", dir);
    snprintf(old_part, sizeof old_part, "%s/old.part", dir);
    copy_file(pf, old_pf);
    copy_file(path_in(dir, "entities.part"), old_part);
    append_some(w, 200, 50000); /* (same segment: 256 KiB hold more) and a newer piece */
    CHECK_OK(bp_store_sync(w));
    char pf2[4200];
    CHECK(piece_path(dir, pf2, sizeof pf2));
    CHECK(strcmp(pf, pf2) == 0); /* the same segment's */
    uint64_t none = 0, k = 0;
    char *want = read_without_piece(dir, &none);
    char part[4200];
    snprintf(part, sizeof part, "%s", path_in(dir, "entities.part"));
    char new_part[4200], new_pf[4200];
    snprintf(new_part, sizeof new_part, "%s/new.part", dir);
    snprintf(new_pf, sizeof new_pf, "%s/new.pfidx", dir);
    copy_file(part, new_part);
    copy_file(pf, new_pf);
    /* 1. the older entity checkpoint with the newer piece, 2. the other way round */
    for (int round = 0; round < 4; round++) {
        copy_file(round == 0 ? old_part : new_part, part);
        copy_file(round == 1 ? old_pf : new_pf, pf);
        if (round == 2) { /* 3. a byte of the piece changed (its CRCs then fail) */
            FILE *f = fopen(pf, "r+b");
            CHECK(f != NULL);
            fseek(f, 2000, SEEK_SET);
            int c = fgetc(f);
            fseek(f, 2000, SEEK_SET);
            fputc(c ^ 0x40, f);
            fclose(f);
        }
        if (round == 3) CHECK_EQ(truncate(part, 100), 0); /* 4. a cut entity checkpoint */
        char *got = read_it(dir, &k);
        CHECK(got && strcmp(got, want) == 0);
        CHECK_EQ(k, none); /* passed over: the segment scanned whole */
        free(got);
    }
    /* the pair as written: used again */
    copy_file(new_part, part);
    copy_file(new_pf, pf);
    char *got = read_it(dir, &k);
    CHECK(got && strcmp(got, want) == 0);
    CHECK(k < none);
    free(got);
    free(want);
    CHECK_OK(bp_store_close(w));
    bp__piece_bytes = 8u << 20;
    t_rmdir(dir);
}

/* A power cut may take a piece, the frames it lists (never synced) or the index files it
 * needs: a reader after it reads what the files hold, and the next writer removes the piece.
 * A piece whose last frame a cut tore, put back after a writer wrote other frames there, is
 * passed over. */
static void test_piece_after_a_power_cut(void) {
    const char *dir = t_dir("piece-power");
    bp__piece_bytes = 16 << 10;
    bp_fault fault;
    bp_fault_init(&fault);
    t_open_opts o = WRITER;
    o.fault = &fault;
    bp_store *w = t_open(dir, &o);
    append_some(w, 1500, 3);
    CHECK_OK(bp_store_sync(w)); /* durable, with a piece */
    append_some(w, 300, 9000);
    usleep(100 * 1000);        /* (past the wait between two pieces) */
    append_some(w, 300, 9300); /* not synced: a piece of them (NO_SYNC publishes at once) */
    char pf[4200], keep_pf[4200], keep_part[4200];
    CHECK(piece_path(dir, pf, sizeof pf));
    snprintf(keep_pf, sizeof keep_pf, "%s/keep.pfidx", dir);
    snprintf(keep_part, sizeof keep_part, "%s/keep.part", dir);
    copy_file(pf, keep_pf);
    copy_file(path_in(dir, "entities.part"), keep_part);
    bp__store_crash(w);
    bp_fault_power_loss(&fault);
    bp_fault_destroy(&fault);
    /* the pieces kept (a file system may keep a renamed file and lose the frames it lists) */
    copy_file(keep_pf, pf);
    copy_file(keep_part, path_in(dir, "entities.part"));
    uint64_t k = 0, none = 0;
    char *got = read_it(dir, &k);
    char *want = read_without_piece(dir, &none);
    CHECK(got && want && strcmp(got, want) == 0);
    free(got);
    free(want);
    /* the next writer: pieces of what came before it are gone */
    w = t_open(dir, &WRITER);
    struct stat st;
    CHECK(!piece_path(dir, pf, sizeof pf));
    CHECK(stat(path_in(dir, "entities.part"), &st) != 0);
    CHECK_OK(bp_store_close(w));
    /* the last frame its piece lists torn (a cut that took it), and a writer that writes
     * other frames there: the piece put back lists a frame that is not this one (the CRC of
     * its last frame tells) */
    t_open_opts big = WRITER;
    big.segment_size = 8 << 20; /* (room: the next writer writes where the cut was) */
    w = t_open(dir, &big);
    append_some(w, 300, 30000);
    CHECK_OK(bp_store_sync(w));
    CHECK(piece_path(dir, pf, sizeof pf));
    copy_file(pf, keep_pf);
    copy_file(path_in(dir, "entities.part"), keep_part);
    bp__store_crash(w);
    size_t nseg = 0;
    bp_store *r = t_open(dir, &READER);
    bp_segment_info info[64];
    info[0] = (bp_segment_info)BP_SEGMENT_INFO_INIT;
    CHECK_OK(bp_store_segments_list(r, info, 64, &nseg));
    CHECK_OK(bp_store_close(r));
    char seg[4200];
    snprintf(seg, sizeof seg, "%s/segments/%06u.fbat", dir, info[nseg - 1].segno);
    CHECK_EQ(truncate(seg, (off_t)info[nseg - 1].bytes - 3), 0);
    t_open_opts ol = big;
    ol.accept_loss = true;
    w = t_open(dir, &ol);
    append_some(w, 400, 20000);
    bp__store_crash(w);
    copy_file(keep_pf, pf);
    copy_file(keep_part, path_in(dir, "entities.part"));
    got = read_it(dir, &k);
    want = read_without_piece(dir, &none);
    CHECK(got && want && strcmp(got, want) == 0);
    CHECK_EQ(k, none);
    free(got);
    free(want);
    bp__piece_bytes = 8u << 20;
    t_rmdir(dir);
}

/* A reader opened with a piece follows the writer past the seal of that segment: the
 * segment's index file replaces the piece, and every answer stays a fresh reader's. */
static void test_follower_swaps_its_piece_at_the_seal(void) {
    const char *dir = t_dir("piece-follow");
    bp__piece_bytes = 16 << 10;
    bp_store *w = t_open(dir, &WRITER);
    append_some(w, 1200, 11);
    CHECK_OK(bp_store_sync(w));
    append_some(w, 30, 70000);
    bp_store *r = t_open(dir, &READER);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    CHECK_OK(bp_store_open_report_get(r, &rep));
    uint64_t scanned = rep.frames_scanned;
    uint32_t six0 = 0, six1 = 0;
    uint64_t end0 = 0, end1 = 0;
    bp__store_tier(r, &six0, &end0);
    CHECK(end0 > 0); /* the newest tier segment: by its piece */
    /* the writer goes on past two seals */
    for (int round = 0; round < 6; round++) {
        append_some(w, 400, 80000u + 1000u * (unsigned)round);
        CHECK_OK(bp_store_sync(w));
        uint64_t pub = 0;
        CHECK_OK(bp_store_refresh(r, &pub));
    }
    CHECK_OK(bp_store_sync(w));
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_OK(bp_store_refresh(r, &pub)); /* (a seal's index file may come after the refresh) */
    uint64_t k = 0;
    char *want = read_without_piece(dir, &k);
    char *got = digest(r);
    CHECK(got && want && strcmp(got, want) == 0);
    CHECK(scanned < 1200); /* it opened with a piece */
    bp__store_tier(r, &six1, &end1);
    CHECK_EQ(end1, 0); /* the segment's index file replaced the piece */
    CHECK(six1 >= six0);
    free(got);
    free(want);
    CHECK_OK(bp_store_close(r));
    CHECK_OK(bp_store_close(w));
    bp__piece_bytes = 8u << 20;
    t_rmdir(dir);
}

/* The writer's piece writes fail: its appends go on, and readers scan instead. */
static void test_piece_write_failure_is_not_the_appends(void) {
    const char *dir = t_dir("piece-fail");
    bp__piece_bytes = 16 << 10;
    bp_fault fault;
    bp_fault_init(&fault);
    t_open_opts o = WRITER;
    o.segment_size = 8 << 20; /* (no seal: its files are renamed too) */
    o.fault = &fault;
    bp_store *w = t_open(dir, &o);
    pthread_mutex_lock(&fault.mu);
    fault.fail_rename_at = fault.renames + 1; /* every rename from now: the pieces' */
    fault.sticky = true;
    pthread_mutex_unlock(&fault.mu);
    append_some(w, 1500, 5);
    CHECK_OK(bp_store_sync(w));
    append_some(w, 100, 6000);
    CHECK_OK(bp_store_sync(w));
    char pf[4200];
    CHECK(!piece_path(dir, pf, sizeof pf));
    CHECK(fault.tripped > 0);
    uint64_t k = 0;
    bp_store *r = t_open(dir, &READER);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    CHECK_OK(bp_store_open_report_get(r, &rep));
    CHECK(rep.events >= 1600);
    CHECK_EQ(rep.frames_scanned, rep.events);
    CHECK_OK(bp_store_close(r));
    (void)k;
    bp__store_crash(w);
    bp_fault_destroy(&fault);
    bp__piece_bytes = 8u << 20;
    t_rmdir(dir);
}

int main(void) {
    RUN(test_reader_with_a_piece_reads_the_same);
    RUN(test_piece_that_does_not_fit_is_passed_over);
    RUN(test_piece_after_a_power_cut);
    RUN(test_follower_swaps_its_piece_at_the_seal);
    RUN(test_piece_write_failure_is_not_the_appends);
    T_DONE();
}
