/* What 1.1 added: bp_entities_list, entities in bytewise order of their names, by prefix, paged
 * with `after`, with their published events and head clocks; entities that arrive after a listing
 * are merged in, a compaction's renumbered index is sorted anew; the tier's (records on disk) count
 * like the others; and bp_store_stats.index_file_bytes, with a 1.0 caller's shorter struct still
 * served. */
#include "t.h"

#include <stddef.h>

static const char *g_dir;

static void put(bp_store *s, const char *ent, int n) {
    for (int i = 0; i < n; i++) {
        bp_receipt r = BP_RECEIPT_INIT;
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        CHECK_OK(bp_append_ex(s, &r, ent, "s", BP_KIND(1, 1), "x", 1, &o));
    }
}

/* The listing of prefix (after `after`) as "name:events:clock,..." into out, their number into
 * *n. */
static void list_n(bp_store *s, const char *prefix, const char *after, size_t max, char *out,
                   size_t cap, size_t *count) {
    bp_entity_info v[64];
    v[0] = (bp_entity_info)BP_ENTITY_INFO_INIT;
    size_t n = 99;
    out[0] = 0;
    *count = 99;
    CHECK_OK(bp_entities_list(s, prefix, after, v, max, &n));
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s:%llu:%llu", i ? "," : "", v[i].name,
                 (unsigned long long)v[i].events, (unsigned long long)v[i].clock);
        CHECK_EQ(v[i].struct_size, sizeof(bp_entity_info));
    }
    *count = n;
}

static size_t list(bp_store *s, const char *prefix, const char *after, size_t max, char *out,
                   size_t cap) {
    size_t n;
    list_n(s, prefix, after, max, out, cap, &n);
    return n;
}

static void test_listing(void) {
    g_dir = t_dir("entities");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 4096});
    const char *names[] = {"b", "a:2", "a:10", "a:1", "ab", "a"};
    for (int i = 0; i < 6; i++)
        put(s, names[i], i + 1);
    char got[2048];
    CHECK_EQ(list(s, "a", NULL, 64, got, sizeof got), 5);
    CHECK(strcmp(got, "a:6:6,a:1:4:4,a:10:3:3,a:2:2:2,ab:5:5") == 0);
    CHECK_EQ(list(s, "a:", NULL, 64, got, sizeof got), 3);
    CHECK(strcmp(got, "a:1:4:4,a:10:3:3,a:2:2:2") == 0);
    CHECK_EQ(list(s, "a:", "a:1", 64, got, sizeof got), 2); /* after: strictly past it */
    CHECK(strcmp(got, "a:10:3:3,a:2:2:2") == 0);
    CHECK_EQ(list(s, NULL, "a:2", 2, got, sizeof got), 2); /* paged: max */
    CHECK(strcmp(got, "ab:5:5,b:1:1") == 0);
    CHECK_EQ(list(s, "c", NULL, 64, got, sizeof got), 0);
    CHECK_EQ(list(s, "", "zzz", 64, got, sizeof got), 0);
    put(s, "a:0", 2); /* merged into the order kept since the first listing */
    put(s, "a", 1);
    CHECK_EQ(list(s, "a:", NULL, 64, got, sizeof got), 4);
    CHECK(strcmp(got, "a:0:2:2,a:1:4:4,a:10:3:3,a:2:2:2") == 0);
    CHECK_EQ(list(s, "a", NULL, 1, got, sizeof got), 1);
    CHECK(strcmp(got, "a:7:7") == 0);
    /* errors */
    size_t n = 0;
    bp_entity_info bad = BP_ENTITY_INFO_INIT;
    bad.struct_size = 8;
    CHECK_FAILS(bp_entities_list(s, NULL, NULL, &bad, 1, &n), BP_EINVAL, "struct_size");
    CHECK_FAILS(bp_entities_list(s, NULL, NULL, NULL, 1, &n), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_entities_list(NULL, NULL, NULL, NULL, 0, &n), BP_EINVAL, "NULL");
    CHECK_OK(bp_entities_list(s, NULL, NULL, NULL, 0, &n));
    CHECK_EQ(n, 0);
    put(s, "zz", 100); /* several sealed segments */
    CHECK_OK(bp_store_close(s));

    /* reopened: the sealed segments' events (read in place) count the same */
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments > 1 && st.index_file_bytes > 0); /* sealed ones, read in place */
    /* a 1.0 caller's bp_store_stats ends before index_file_bytes: filled up to there only */
    bp_store_stats old;
    memset(&old, 0xAB, sizeof old);
    old.struct_size = (uint32_t)offsetof(bp_store_stats, index_file_bytes);
    CHECK_OK(bp_store_stats_get(s, &old));
    CHECK_EQ(old.struct_size, offsetof(bp_store_stats, index_file_bytes));
    CHECK_EQ(old.events, st.events);
    CHECK_EQ(old.index_file_bytes, 0xABABABABABABABABull);
    old.struct_size = sizeof old + 8;
    CHECK_FAILS(bp_store_stats_get(s, &old), BP_EINVAL, "struct_size");
    CHECK_EQ(list(s, "a", NULL, 64, got, sizeof got), 6);
    CHECK(strcmp(got, "a:7:7,a:0:2:2,a:1:4:4,a:10:3:3,a:2:2:2,ab:5:5") == 0);
    CHECK_OK(bp_store_close(s));

    /* a compaction keeping the last event of each: events 1 each, clocks as they were, and
     * the listing sorted anew for the new index */
    s = t_open(g_dir, &(t_open_opts){.segment_size = 4096});
    CHECK_EQ(list(s, "a:", NULL, 64, got, sizeof got), 4);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 1;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK_EQ(list(s, "a:", NULL, 64, got, sizeof got), 4);
    CHECK(strcmp(got, "a:0:1:2,a:1:1:4,a:10:1:3,a:2:1:2") == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

int main(void) {
    test_listing();
    printf("%d checks, %d failures\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
