/* Backup and restore of a compacted store (issue 23, point 5): an export of a compacted store
 * starts with its anchors record, and an import into an empty store restores it byte for byte
 * (export -> import -> export identical), verifies clean, reopens (with and without
 * index.ckpt, after SIGKILL) and takes appends that continue the chains; several compactions
 * (holes at the start and in the middle, an entity compaction emptied, batches compaction cut);
 * a compacted range spread over several segments; bad input: a store that is not empty, a
 * tampered anchor, a malformed or misplaced anchors record, an unknown format; an export of an
 * uncompacted store still imports as before. */
#include "t.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* The stores of these tests: no open event (an import target: its own event would take a
 * seq), 4 KiB segments, the tests' appends synced at close (BP_NO_SYNC). */
static const t_open_opts OPTS = {.segment_size = 4096, .durability = {.mode = BP_DUR_NONE}};

static char *export_all(bp_store *s) {
    return t_export(s, false);
}

static bool verify_clean(bp_store *s) {
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status rc = bp_store_verify(s, &vr, NULL);
    if (rc) fprintf(stderr, "verify: %s\n", vr.first_problem);
    return rc == BP_OK && vr.problems == 0;
}

/* Import text line by line (at most max_lines; SIZE_MAX for all), ending the import when
 * end is set. The first error, or BP_OK. */
static bp_status import_text(bp_store *s, const char *text, size_t max_lines, bool end,
                             bp_import_report *rep) {
    bp_importer *imp;
    bp_status rc = bp_import_begin(s, &imp);
    if (rc) return rc;
    size_t n = 0;
    for (const char *p = text; !rc && *p && n < max_lines; n++) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
        rc = bp_import_line(imp, p, l);
        p += l;
    }
    if (!end) return rc; /* left open: the caller dies */
    char msg[700];
    snprintf(msg, sizeof msg, "%s", bp_last_error());
    bp_import_report r = BP_IMPORT_REPORT_INIT;
    bp_status erc = bp_import_end(imp, &r);
    if (rep) *rep = r;
    if (rc) return bp_set_error(rc, "%s", msg);
    return erc;
}

static size_t count_lines(const char *t) {
    size_t n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

#define N_ENT 5
static const char *ENTS[N_ENT] = {"acct:a", "acct:b", "acct:c", "acct:d", "acct:gone"};

/* rounds of events, ~150-byte payloads: every entity each round, a batch of two every 7th
 * round, an idempotency key now and then. */
static void fill(bp_store *s, int from, int rounds) {
    char payload[200];
    for (int r = from; r < from + rounds; r++) {
        int len = snprintf(payload, sizeof payload, "round %d %0120d", r, r);
        if (r % 7 == 3) {
            bp_batch_item items[2] = {
                {ENTS[0], "ledger", BP_KIND(1, 1), payload, (size_t)len, NULL},
                {ENTS[2], "ledger", BP_KIND(1, 2), payload, (size_t)len, NULL}};
            CHECK_OK(bp_append_batch(s, NULL, items, 2));
        }
        for (int e = 0; e < N_ENT; e++) {
            bp_append_options o = BP_APPEND_OPTIONS_INIT;
            char key[32];
            snprintf(key, sizeof key, "k-%d-%d", r, e);
            if (r % 5 == 1) o.idempotency_key = key;
            CHECK_OK(
                bp_append_ex(s, NULL, ENTS[e], "ledger", BP_KIND(1, 1), payload, (size_t)len, &o));
        }
    }
}

/* A source compacted three times: keep_last (holes from seq 1), more appends, tombstones
 * (acct:solo emptied), keep_last again (holes in the middle of the range); its compacted
 * range keeps more than an import writes at once (1024 events), so that it takes several
 * segments on a target. */
static void compacted_source(const char *dir, bp_store **out) {
    bp_store *s = *out = t_open(dir, &OPTS);
    if (!s) return;
    fill(s, 0, 200);
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 12;
    CHECK_OK(bp_compact(s, NULL, &o));
    fill(s, 200, 20);
    for (int i = 0; i < 3; i++) /* acct:solo: removed whole, its anchor only */
        CHECK_OK(bp_append(s, NULL, "acct:solo", "ledger", BP_KIND(1, 1), "s", 1));
    CHECK_OK(bp_tombstone(s, NULL, "acct:solo", "ledger"));
    CHECK_OK(bp_tombstone(s, NULL, ENTS[4], "ledger"));
    o.keep_last = 0;
    o.tombstoned = true;
    CHECK_OK(bp_compact(s, NULL, &o));
    fill(s, 220, 320);
    CHECK_OK(bp_tombstone(s, NULL, ENTS[4], "ledger"));
    o.keep_last = 300;
    CHECK_OK(bp_compact(s, NULL, &o));
    fill(s, 540, 4); /* dense events above the range */
}

static void test_roundtrip(void) {
    const char *sdir = t_dir("restore-src");
    bp_store *s;
    compacted_source(sdir, &s);
    CHECK(s != NULL);
    if (!s) return;
    char *a = export_all(s);
    CHECK(a && !strncmp(a, "{\"format\":\"batpak-anchors-v1\",\"upto\":", 37));
    CHECK(verify_clean(s));
    CHECK_EQ(t_count_stream(s, "acct:solo"), 0); /* emptied: its anchor only */
    CHECK(strstr(a, "{\"entity\":\"acct:solo\",\"clock\":4,"));
    CHECK_OK(bp_store_close(s));

    /* a small segment size: the compacted range takes several segments on the target */
    const char *tdir = t_dir("restore-dst");
    bp_store *t = t_open(tdir, &OPTS);
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    CHECK_OK(import_text(t, a, SIZE_MAX, true, &rep));
    CHECK_EQ(rep.lines, count_lines(a));
    CHECK_EQ(rep.imported, count_lines(a) - 1);
    char *b = export_all(t);
    CHECK(b && strcmp(a, b) == 0);
    CHECK(verify_clean(t));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(t, &st));
    CHECK(st.segments > 2);
    /* again: every event is held, nothing changes */
    CHECK_OK(import_text(t, a, SIZE_MAX, true, &rep));
    CHECK_EQ(rep.imported, 0);
    CHECK_EQ(rep.skipped, count_lines(a) - 1);
    CHECK_OK(bp_store_close(t)); /* writes index.ckpt */
    free(b);

    /* reopen with the checkpoint, then without it */
    for (int k = 0; k < 2; k++) {
        if (k) {
            char p[1200];
            snprintf(p, sizeof p, "%s/index.ckpt", tdir);
            CHECK_EQ(unlink(p), 0);
        }
        t = t_open(tdir, &OPTS);
        CHECK(t != NULL);
        if (!t) return;
        b = export_all(t);
        CHECK(b && strcmp(a, b) == 0);
        CHECK(verify_clean(t));
        free(b);
        CHECK_OK(bp_store_close(t));
    }

    /* appends continue the chains, the emptied entity's from its anchor */
    t = t_open(tdir, &OPTS);
    uint64_t heads[N_ENT];
    for (int e = 0; e < N_ENT; e++) {
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_append(t, &r, ENTS[e], "ledger", BP_KIND(1, 1), "x", 1));
        heads[e] = r.clock;
    }
    CHECK(heads[4] > 1);
    bp_receipt solo = BP_RECEIPT_INIT; /* the emptied entity goes on from its anchor */
    CHECK_OK(bp_append(t, &solo, "acct:solo", "ledger", BP_KIND(1, 1), "s", 1));
    CHECK_EQ(solo.clock, 5);
    CHECK(verify_clean(t));
    /* and the restored store compacts again */
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 3;
    CHECK_OK(bp_compact(t, NULL, &o));
    CHECK(verify_clean(t));
    CHECK_OK(bp_store_close(t));
    t = t_open(tdir, &OPTS);
    CHECK(verify_clean(t));
    for (int e = 0; e < N_ENT; e++) {
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_append(t, &r, ENTS[e], "ledger", BP_KIND(1, 1), "y", 1));
        CHECK_EQ(r.clock, heads[e] + 1);
    }
    CHECK_OK(bp_store_close(t));
    free(a);
    t_rmdir(sdir);
    t_rmdir(tdir);
}

/* The source's export text, made once. */
static char *g_export;

static void make_export(void) {
    const char *sdir = t_dir("restore-src2");
    bp_store *s;
    compacted_source(sdir, &s);
    if (!s) exit(1);
    g_export = export_all(s);
    bp_store_close(s);
    t_rmdir(sdir);
}

/* A child imports the first n lines of the export and dies by SIGKILL (before the import
 * ends: nothing closed or synced beyond what the writes did). */
static void import_and_die(const char *dir, size_t n) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bp_store *t = t_open(dir, &OPTS);
        if (!t) _exit(3);
        import_text(t, g_export, n, false, NULL);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_sigkill(void) {
    size_t lines = count_lines(g_export);
    /* the first event above the range: its line number (the range ends at upto) */
    unsigned long long upto = strtoull(g_export + 37, NULL, 10);
    size_t first_above = 0, ln = 1;
    for (const char *p = g_export; *p && !first_above; ln++) {
        const char *q = strstr(p, "\"global_seq\":");
        if (ln > 1 && q && strtoull(q + 13, NULL, 10) > upto) first_above = ln;
        p = strchr(p, '\n') + 1;
    }
    CHECK(first_above > 2 && first_above < lines);
    /* killed after the anchors only, within the range, and after it */
    CHECK(first_above > 1060); /* the first 1024 events are written at once */
    size_t cuts[] = {1, 1050, first_above + 2};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        const char *dir = t_dir("restore-kill");
        import_and_die(dir, cuts[k]);
        bp_store *t = t_open(dir, &OPTS);
        CHECK(t != NULL);
        if (!t) return;
        CHECK(verify_clean(t));
        bp_import_report rep = BP_IMPORT_REPORT_INIT;
        bp_status rc = import_text(t, g_export, SIZE_MAX, true, &rep);
        if (cuts[k] > first_above) {
            /* past the range: the import resumes and completes the store */
            CHECK_OK(rc);
            char *b = export_all(t);
            CHECK(b && strcmp(b, g_export) == 0);
            free(b);
        } else {
            /* within it: what is missing looks like holes; refused, not misread */
            CHECK_EQ(rc, BP_ECONFLICT);
            CHECK(strstr(bp_last_error(), "cannot be resumed") != NULL);
        }
        CHECK(verify_clean(t));
        bp_receipt r = BP_RECEIPT_INIT; /* the store takes appends either way */
        CHECK_OK(bp_append(t, &r, ENTS[0], "ledger", BP_KIND(1, 1), "z", 1));
        CHECK(verify_clean(t));
        CHECK_OK(bp_store_close(t));
        t = t_open(dir, &OPTS);
        CHECK(t && verify_clean(t));
        bp_store_close(t);
        t_rmdir(dir);
    }
}

/* An import that ends within the compacted range (the input stops there), then appends on
 * the same handle: they go past the range, never into it. */
static void test_append_within_range(void) {
    unsigned long long upto = strtoull(g_export + 37, NULL, 10);
    const char *dir = t_dir("restore-partial");
    bp_store *t = t_open(dir, &OPTS);
    CHECK_OK(import_text(t, g_export, 500, true, NULL));
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(t, &r, ENTS[1], "ledger", BP_KIND(1, 1), "p", 1));
    CHECK_EQ(r.global_seq, upto + 1);
    CHECK_OK(bp_append(t, &r, "acct:new", "ledger", BP_KIND(1, 1), "p", 1));
    CHECK_EQ(r.global_seq, upto + 2);
    CHECK(verify_clean(t));
    CHECK_OK(bp_store_close(t));
    t = t_open(dir, &OPTS);
    CHECK(t && verify_clean(t));
    CHECK_EQ(t_count_stream(t, "acct:new"), 1);
    bp_store_close(t);
    t_rmdir(dir);
}

/* Replace the first occurrence of from in text by to (a new string). */
static char *replace(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    if (!at) return NULL;
    size_t n = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static void test_refused(void) {
    const char *a = g_export;
    bp_store *t;
    /* a store that is not empty */
    const char *dir = t_dir("restore-full");
    t = t_open(dir, &OPTS);
    CHECK_OK(bp_append(t, NULL, "mine:1", "x", BP_KIND(1, 1), "m", 1));
    CHECK_FAILS(import_text(t, a, SIZE_MAX, true, NULL), BP_ECONFLICT,
                "imports only into an empty store");
    CHECK_EQ(t_count_stream(t, "mine:1"), 1);
    CHECK(verify_clean(t));
    bp_store_close(t);
    t_rmdir(dir);

    /* a tampered anchor: its entity's first event does not continue it */
    const char *h = strstr(a, "\"hash\":\"") + 8;
    char from[80], to[80];
    snprintf(from, sizeof from, "\"hash\":\"%.64s", h);
    snprintf(to, sizeof to, "\"hash\":\"%c%.63s", h[0] == '0' ? '1' : '0', h + 1);
    char *bad = replace(a, from, to);
    dir = t_dir("restore-tampered");
    t = t_open(dir, &OPTS);
    CHECK_FAILS(import_text(t, bad, SIZE_MAX, true, NULL), BP_ECONFLICT,
                "prev_hash is not the hash of its previous event");
    CHECK(verify_clean(t));
    bp_store_close(t);
    free(bad);
    t_rmdir(dir);

    /* malformed records, each into an empty store */
    static const struct {
        const char *from, *to, *needle;
        bp_status code;
    } cases[] = {
        {"batpak-anchors-v1", "batpak-anchors-v9", "this build reads 'batpak-anchors-v1'",
         BP_EVERSION},
        {"\"upto\":", "\"upto\":-", "anchors record must be", BP_EINVAL},
        {"\"clock\":", "\"clock\":-", "anchor 0 must be", BP_EINVAL},
        {"\"hash\":\"", "\"hash\":\"X", "anchor 0 must be", BP_EINVAL},
        {"{\"entity\":\"", "{\"extra\":1,\"entity\":\"", "anchor 0 must be", BP_EINVAL},
        {"\"anchors\":[", "\"anchors\":[],\"x\":[", "anchors record must be", BP_EINVAL},
        {"{\"entity\":\"", "{\"entity\":\"batpak:store\"},{\"entity\":\"", "anchor 0 must be",
         BP_EINVAL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *m = replace(a, cases[k].from, cases[k].to);
        CHECK(m != NULL);
        if (!m) continue;
        dir = t_dir("restore-bad");
        t = t_open(dir, &OPTS);
        CHECK_FAILS(import_text(t, m, SIZE_MAX, true, NULL), cases[k].code, cases[k].needle);
        CHECK(!strstr(bp_last_error(), "line 2")); /* refused at line 1, nothing written */
        bp_store_stats st = BP_STORE_STATS_INIT;
        CHECK_OK(bp_store_stats_get(t, &st));
        CHECK_EQ(st.events, 0);
        bp_store_close(t);
        t_rmdir(dir);
        free(m);
    }
    /* two anchors for one entity */
    {
        const char *e0 = strstr(a, "{\"entity\":");
        const char *end = strchr(e0, '}');
        char dup[400];
        snprintf(dup, sizeof dup, "%.*s,%.*s", (int)(end - e0 + 1), e0, (int)(end - e0 + 1), e0);
        char orig[400];
        snprintf(orig, sizeof orig, "%.*s", (int)(end - e0 + 1), e0);
        char *m = replace(a, orig, dup);
        dir = t_dir("restore-dup");
        t = t_open(dir, &OPTS);
        CHECK_FAILS(import_text(t, m, SIZE_MAX, true, NULL), BP_ECORRUPT, "two anchors");
        bp_store_close(t);
        t_rmdir(dir);
        free(m);
    }
    /* an anchors record after the first line */
    {
        const char *nl = strchr(a, '\n');
        size_t hl = (size_t)(nl - a) + 1;
        const char *nl2 = strchr(nl + 1, '\n');
        size_t l2 = (size_t)(nl2 - nl);
        char *m = malloc(strlen(a) + hl + 1);
        memcpy(m, a, hl);           /* the record */
        memcpy(m + hl, nl + 1, l2); /* the first event */
        memcpy(m + hl + l2, a, hl); /* the record again */
        strcpy(m + hl + l2 + hl, nl2 + 1);
        dir = t_dir("restore-misplaced");
        t = t_open(dir, &OPTS);
        CHECK_FAILS(import_text(t, m, SIZE_MAX, true, NULL), BP_EINVAL,
                    "line 3: an anchors record comes only as the first line");
        bp_store_close(t);
        t_rmdir(dir);
        free(m);
    }
    /* without its anchors record, a compacted store's events do not fit an empty store */
    {
        dir = t_dir("restore-headless");
        t = t_open(dir, &OPTS);
        CHECK_FAILS(import_text(t, strchr(a, '\n') + 1, SIZE_MAX, true, NULL), BP_ECONFLICT,
                    "but the store's next is 1");
        bp_store_close(t);
        t_rmdir(dir);
    }
}

/* An uncompacted store's export has no anchors record and imports as it always did. */
static void test_plain_export(void) {
    const char *sdir = t_dir("restore-plain");
    bp_store *s = t_open(sdir, &OPTS);
    fill(s, 0, 6);
    char *a = export_all(s);
    CHECK(a && !strncmp(a, "{\"global_seq\":1,", 16));
    bp_store_close(s);
    const char *tdir = t_dir("restore-plain-dst");
    bp_store *t = t_open(tdir, &OPTS);
    CHECK_OK(import_text(t, a, SIZE_MAX, true, NULL));
    char *b = export_all(t);
    CHECK(b && strcmp(a, b) == 0);
    CHECK(verify_clean(t));
    bp_store_close(t);
    free(a);
    free(b);
    t_rmdir(sdir);
    t_rmdir(tdir);
}

int main(void) {
    RUN(test_roundtrip);
    make_export();
    RUN(test_sigkill);
    RUN(test_append_within_range);
    RUN(test_refused);
    RUN(test_plain_export);
    free(g_export);
    T_DONE();
}
