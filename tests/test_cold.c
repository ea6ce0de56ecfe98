/* The entity directory searched in place: an open with entities.ckpt interns no entity (the
 * index's cold directory, index.h bp_index_cold); each is interned the first time something
 * looks it up, by a reader holding the index shared or by the writer. Whatever touched or
 * not, every answer is the one a fully loaded index gives: heads, streams, listings in name
 * order, counts, appends that go on from the right head, a compaction, the checkpoint written
 * again at the next seal. Readers interning in many threads while the writer appends (TSan
 * runs this file). */
#include "t_six.h"
#include "store/store_impl.h"

#include <pthread.h>

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

#define ENTS 300
#define SMALL (64 << 10)

static const char *g_dir;
static uint64_t g_count[ENTS + 8]; /* each entity's events as written */

static void name_of(int i, char *out, size_t cap) {
    snprintf(out, cap, "e:%03d", i);
}

/* n events over the entities, entity i getting i % 7 + 1 of each round's share. */
static void fill(bp_store *s, int rounds) {
    char pay[64];
    memset(pay, 'p', sizeof pay);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < ENTS; i++) {
            if (r % 7 >= i % 7 + 1) continue;
            char e[16];
            name_of(i, e, sizeof e);
            bp_append_options o = BP_APPEND_OPTIONS_INIT;
            o.durability = BP_NO_SYNC;
            bp_receipt rc = BP_RECEIPT_INIT;
            CHECK_OK(bp_append_ex(s, &rc, e, "sc", BP_KIND(1, 1), pay, sizeof pay, &o));
            CHECK_EQ(rc.clock, ++g_count[i]);
        }
}

/* A store named name of 14 rounds, closed (its active segment sealed: the checkpoint is the
 * tier's), and g_count as written; g_dir is its directory. */
static void make_store(const char *name) {
    g_dir = t_dir(name);
    memset(g_count, 0, sizeof g_count);
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    fill(s, 14);
    CHECK_OK(bp_store_close(s));
}

static void head_into(bp_store *s, const char *e, uint64_t *c) {
    bp_hash h;
    *c = UINT64_MAX;
    CHECK_OK(bp_entity_head(s, c, &h, e));
}

static uint64_t head_of(bp_store *s, const char *e) {
    uint64_t c;
    head_into(s, e, &c);
    return c;
}

static bool g_compacted; /* (then an entity lists the events compaction kept) */

/* The whole listing: every entity once, in name order, with its count. */
static void check_listing(bp_store *s, int extra, const char *extra_name, uint64_t extra_n) {
    bp_entity_info out[ENTS + 8];
    for (size_t i = 0; i < ENTS + 8; i++)
        out[i] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    size_t n = 0;
    CHECK_OK(bp_entities_list(s, NULL, NULL, out, ENTS + 8, &n));
    CHECK_EQ(n, (size_t)ENTS + extra);
    size_t k = 0;
    for (int i = 0; i < ENTS && k < n; i++, k++) {
        char e[16];
        name_of(i, e, sizeof e);
        CHECK_STR(out[k].name, e);
        if (!g_compacted) CHECK_EQ(out[k].events, g_count[i]);
        CHECK_EQ(out[k].clock, g_count[i]);
    }
    if (extra && k < n) {
        CHECK_STR(out[k].name, extra_name);
        CHECK_EQ(out[k].events, extra_n);
    }
    /* a page from the middle: a prefix and a name to go past, across touched and untouched */
    CHECK_OK(bp_entities_list(s, "e:02", "e:021", out, 5, &n));
    CHECK_EQ(n, 5);
    CHECK_STR(out[0].name, "e:022");
    CHECK_STR(out[4].name, "e:026");
    CHECK_EQ(out[1].clock, g_count[23]);
    CHECK_OK(bp_entities_list(s, "e:29", NULL, out, 50, &n));
    CHECK_EQ(n, 10);
    CHECK_OK(bp_entities_list(s, "f", NULL, out, 50, &n));
    CHECK_EQ(n, (size_t)extra);
}

static void stats_into(bp_store *s, bp_store_stats *st) {
    *st = (bp_store_stats)BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, st));
}

static bp_store_stats stats_of(bp_store *s) {
    bp_store_stats st;
    stats_into(s, &st);
    return st;
}

static void test_open_touches_nothing(void) {
    make_store("cold-basic");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK(s->idx.cold != NULL);
    CHECK(s->entckpt_segno > 0);
    uint32_t interned = s->idx.entity_names.n; /* (those of the active segment's events) */
    CHECK(interned < ENTS / 2);
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS);
    check_listing(s, 0, NULL, 0); /* nothing interned by a listing */
    CHECK_EQ(s->idx.entity_names.n, interned);

    /* a head, a stream: interned on the way, with the file's state */
    CHECK_EQ(head_of(s, "e:007"), g_count[7]);
    CHECK_EQ(t_count_stream(s, "e:010"), g_count[10]);
    CHECK_EQ(s->idx.entity_names.n, interned + 2);
    CHECK_EQ(head_of(s, "e:999"), 0); /* (none such: nothing interned) */
    CHECK_EQ(s->idx.entity_names.n, interned + 2);

    /* appends to an untouched one go on from its head; a new one starts at 1 */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = g_count[20] - 1;
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_EQ(bp_append_ex(s, &r, "e:020", "sc", BP_KIND(1, 2), "x", 1, &o), BP_ECONFLICT);
    o.expected_clock = g_count[20];
    CHECK_OK(bp_append_ex(s, &r, "e:020", "sc", BP_KIND(1, 2), "x", 1, &o));
    CHECK_EQ(r.clock, ++g_count[20]);
    CHECK_OK(bp_append(s, &r, "e:021", "sc", BP_KIND(1, 2), "y", 1));
    CHECK_EQ(r.clock, ++g_count[21]);
    CHECK_OK(bp_append(s, &r, "f:new", "sc", BP_KIND(1, 2), "z", 1));
    CHECK_EQ(r.clock, 1);
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS + 1);
    check_listing(s, 1, "f:new", 1);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));

    /* again: the new events come from the active segment, on top of the file's state */
    s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK(s->idx.cold != NULL);
    CHECK_EQ(head_of(s, "e:020"), g_count[20]);
    CHECK_EQ(head_of(s, "e:021"), g_count[21]);
    CHECK_EQ(t_count_stream(s, "e:020"), g_count[20]);
    check_listing(s, 1, "f:new", 1);
    /* enough to seal: the checkpoint written again holds every entity, touched or not */
    fill(s, 14);
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK(s->idx.cold != NULL);
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS + 1);
    check_listing(s, 1, "f:new", 1);
    for (int i = 0; i < ENTS; i += 37) {
        char e[16];
        name_of(i, e, sizeof e);
        CHECK_EQ(head_of(s, e), g_count[i]);
        CHECK_EQ(t_count_stream(s, e), g_count[i]);
    }
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* A compaction needs every entity in the table: it interns the rest first. Its anchors then
 * shadow the checkpoint's entries at the next open. */
static void test_compaction(void) {
    make_store("cold-compact");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK(s->idx.cold != NULL);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 2;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK(cr.events_removed > 0);
    g_compacted = true;
    CHECK(s->idx.cold == NULL);
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS);
    check_listing(s, 0, NULL, 0);
    fill(s, 14);
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS);
    check_listing(s, 0, NULL, 0);
    for (int i = 0; i < ENTS; i += 29) {
        char e[16];
        name_of(i, e, sizeof e);
        CHECK_EQ(head_of(s, e), g_count[i]);
    }
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));
    g_compacted = false;
    t_rmdir(g_dir);
}

/* A checkpoint that lies, CRC and sums right: two entities' clocks swapped by one (the sum
 * holds) and a third's head changed. The open uses it; each of the three, at its first use,
 * gets the state its events have, and appends chain on from the real heads. */
static void test_lying_checkpoint(void) {
    g_dir = t_dir("cold-lies");
    memset(g_count, 0, sizeof g_count);
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    fill(s, 14);
    bp_hash real;
    CHECK_OK(bp_entity_head(s, NULL, &real, "e:005"));
    CHECK_OK(bp_store_close(s));
    char p[600];
    snprintf(p, sizeof p, "%s/entities.ckpt", g_dir);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b != NULL && n > 200);
    if (!b) return;
    bp_entdir d;
    CHECK_OK(bp_entdir_open(&d, b, n, p));
    uint32_t *offs = calloc(d.m.n_entities, sizeof *offs);
    bp_entdir_offsets(&d, offs);
    int64_t a3 = bp_entdir_find(&d, offs, "e:003", 5, NULL),
            a4 = bp_entdir_find(&d, offs, "e:004", 5, NULL);
    int64_t a5 = bp_entdir_find(&d, offs, "e:005", 5, NULL);
    CHECK(a3 >= 0 && a4 >= 0 && a5 >= 0);
    uint8_t *e3 = b + offs[a3], *e4 = b + offs[a4], *e5 = b + offs[a5];
    bp_put_be64(e3 + 1, bp_get_be64(e3 + 1) + 1);
    bp_put_be64(e4 + 1, bp_get_be64(e4 + 1) - 1);
    e5[9] ^= 0xFF; /* its head */
    bp_put_be32(b + n - 4, bp_crc32(b, n - 4));
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
    free(offs);
    free(b);

    s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK(s->idx.cold != NULL); /* (used: its sums hold) */
    CHECK_EQ(head_of(s, "e:003"), g_count[3]);
    bp_hash h;
    uint64_t c = 0;
    CHECK_OK(bp_entity_head(s, &c, &h, "e:005"));
    CHECK_EQ(c, g_count[5]);
    CHECK(memcmp(h.b, real.b, 32) == 0);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = g_count[4];
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, "e:004", "sc", BP_KIND(1, 2), "x", 1, &o));
    CHECK_EQ(r.clock, ++g_count[4]);
    CHECK_OK(bp_append(s, &r, "e:005", "sc", BP_KIND(1, 2), "y", 1));
    CHECK_EQ(r.clock, ++g_count[5]);
    CHECK_EQ(s->idx.cold->lies, 3);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* Many readers interning at once while the writer appends (to untouched entities too) and a
 * lister lists: every answer whole (TSan checks the publication). */
typedef struct race {
    bp_store *s;
    int id;
    int bad; /* what went wrong in the thread (CHECK counts from the main thread only) */
} race;

#define EXPECT(r, c)                                                                               \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: thread check failed: %s (last error: %s)\n", __FILE__,         \
                    __LINE__, #c, bp_last_error());                                                \
            (r)->bad++;                                                                            \
        }                                                                                          \
    } while (0)

/* The events of an entity's stream (no CHECK: from a thread). */
static uint64_t stream_count(bp_store *s, const char *e) {
    bp_iter *it = NULL;
    if (bp_stream(s, &it, e, 0)) return 0;
    uint64_t n = 0;
    const bp_event *ev;
    while (bp_iter_next(it, &ev) == BP_OK)
        n++;
    bp_iter_free(it);
    return n;
}

static void read_some(race *r) {
    unsigned seed = (unsigned)r->id * 7919u + 1;
    for (int k = 0; k < 400; k++) {
        char e[16];
        int i = (int)(rand_r(&seed) % ENTS);
        name_of(i, e, sizeof e);
        uint64_t c = 0;
        bp_hash h;
        EXPECT(r, bp_entity_head(r->s, &c, &h, e) == BP_OK);
        EXPECT(r, c >= g_count[i]); /* (the writer only adds) */
        if (k % 16 == 0) EXPECT(r, stream_count(r->s, e) >= g_count[i]);
    }
}

static void *reader(void *arg) {
    read_some(arg);
    return NULL;
}

static void list_some(race *r) {
    bp_entity_info out[64];
    for (int k = 0; k < 64; k++) {
        for (size_t i = 0; i < 64; i++)
            out[i] = (bp_entity_info)BP_ENTITY_INFO_INIT;
        size_t n = 0;
        EXPECT(r, bp_entities_list(r->s, "e:1", NULL, out, 64, &n) == BP_OK);
        bp_store_stats st = BP_STORE_STATS_INIT; /* (the index's bytes, counted meanwhile) */
        EXPECT(r, bp_store_stats_get(r->s, &st) == BP_OK && st.entities == ENTS);
        EXPECT(r, n == 64);
        for (size_t i = 1; i < n; i++)
            EXPECT(r, strcmp(out[i - 1].name, out[i].name) < 0);
    }
}

static void *lister(void *arg) {
    list_some(arg);
    return NULL;
}

static void write_some(race *r) {
    for (int i = ENTS - 1; i >= 0; i -= 3) {
        char e[16];
        name_of(i, e, sizeof e);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        o.has_expected_clock = true;
        o.expected_clock = g_count[i];
        bp_receipt rc = BP_RECEIPT_INIT;
        static const char big[1024]; /* (segments sealed meanwhile: the checkpoint written) */
        EXPECT(r, bp_append_ex(r->s, &rc, e, "sc", BP_KIND(1, 3), big, sizeof big, &o) == BP_OK);
        EXPECT(r, rc.clock == g_count[i] + 1);
    }
}

static void *writer(void *arg) {
    write_some(arg);
    return NULL;
}

static void test_race(void) {
    make_store("cold-race");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SMALL});
    CHECK(s->idx.cold != NULL);
    pthread_t th[6];
    race r[6];
    for (int i = 0; i < 6; i++) {
        r[i] = (race){s, i, 0};
        void *(*fn)(void *) = i == 0 ? writer : i == 1 ? lister : reader;
        CHECK_EQ(pthread_create(&th[i], NULL, fn, &r[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(r[i].bad, 0);
    }
    for (int i = ENTS - 1; i >= 0; i -= 3)
        g_count[i]++;
    CHECK_EQ(stats_of(s).entities, (uint64_t)ENTS);
    check_listing(s, 0, NULL, 0);
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    check_listing(s, 0, NULL, 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

int main(void) {
    test_open_touches_nothing();
    test_compaction();
    test_lying_checkpoint();
    test_race();
    printf("%d checks, %d failures\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
