/* Observability: the open observer (bp_open_options.on_open), Prometheus metrics
 * (bp_store_prometheus) and compaction progress (bp_compact_options.progress). */
#include "t.h"

#include <stddef.h>

/* ------------------------------------------------------------- open observer */

typedef struct seen {
    int calls;
    bp_store *store;
    bp_store_open_report report;
    uint64_t events_in_call; /* bp_store_stats from inside the call */
} seen;

static void observe(void *ctx, bp_store *s, const bp_store_open_report *r) {
    seen *w = ctx;
    w->calls++;
    w->store = s;
    w->report = *r;
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_stats_get(s, &st) == BP_OK) w->events_in_call = st.events;
}

static void test_open_observer(void) {
    const char *dir = t_dir("observe-open");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    seen w = {0};
    o.on_open = observe;
    o.on_open_ctx = &w;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_EQ(w.calls, 1);
    CHECK(w.store == s);
    CHECK(w.report.created);
    bp_store_open_report direct = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &direct);
    CHECK(memcmp(&direct, &w.report, sizeof direct) == 0);
    CHECK_EQ(w.events_in_call, 1); /* the open's own SYSTEM_OPEN_COMPLETED event */
    const uint8_t p[] = {0xc0};
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 1), p, sizeof p));

    /* a failed open (the store is locked) does not call it */
    seen w2 = {0};
    o.on_open_ctx = &w2;
    bp_store *s2;
    CHECK_FAILS(bp_store_open(&s2, dir, &o), BP_ELOCKED, dir);
    CHECK_EQ(w2.calls, 0);
    CHECK_OK(bp_store_close(s));

    /* a reopen reports what it found: the checkpoint and 6 events */
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_EQ(w2.calls, 1);
    CHECK(!w2.report.created);
    CHECK(w2.report.checkpoint_used);
    CHECK_EQ(w2.report.events, 6);
    CHECK_OK(bp_store_close(s));

    /* a struct of another size (a program built against other headers) is refused, named */
    bp_open_options other = BP_OPEN_OPTIONS_INIT;
    other.struct_size = (uint32_t)offsetof(bp_open_options, on_open);
    CHECK_FAILS(bp_store_open(&s, dir, &other), BP_EINVAL, "bp_open_options.struct_size");
    CHECK(s == NULL);
    t_rmdir(dir);
}

/* ------------------------------------------------------------- prometheus */

/* The value of the sample whose name (with labels) is exactly key; -1 when absent. */
static double sample(const char *text, const char *key) {
    size_t n = strlen(key);
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        if (!e) return -1;
        if (l[0] != '#' && (size_t)(e - l) > n && !strncmp(l, key, n) && l[n] == ' ')
            return strtod(l + n + 1, NULL);
        l = e + 1;
    }
    return -1;
}

/* Every line is a comment or "name[{labels}] number", and every sample's metric family has
 * HELP and TYPE lines before it. */
static int well_formed(const char *text) {
    char family[128] = "";
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        if (!e) return 0;
        if (!strncmp(l, "# TYPE ", 7)) {
            const char *sp = memchr(l + 7, ' ', (size_t)(e - l - 7));
            if (!sp || (size_t)(sp - l - 7) >= sizeof family) return 0;
            snprintf(family, sizeof family, "%.*s", (int)(sp - l - 7), l + 7);
        } else if (l[0] != '#') {
            if (!*family || strncmp(l, family, strlen(family))) return 0;
            const char *sp = l;
            while (sp < e && *sp != ' ')
                sp++;
            if (sp == e) return 0;
            char *end;
            strtod(sp + 1, &end);
            if (end != e) return 0;
        }
        l = e + 1;
    }
    return 1;
}

static void test_prometheus(void) {
    const char *dir = t_dir("observe-prom");
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    bp_region reg = BP_REGION_INIT;
    bp_subscription *sub;
    CHECK_OK(bp_subscribe_lossy(s, &sub, &reg, 2)); /* fills after 2: the rest are dropped */
    const uint8_t p[] = {0x81, 0xa1, 'n', 0x01};
    for (int i = 0; i < 12; i++)
        CHECK_OK(
            bp_append(s, NULL, i % 2 ? "acct:1" : "acct:2", "bank", BP_KIND(1, 1), p, sizeof p));
    char *text = NULL;
    CHECK_OK(bp_store_prometheus(s, &text));
    CHECK(text != NULL);
    CHECK(well_formed(text));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(sample(text, "batpak_events"), 12);
    CHECK_EQ(sample(text, "batpak_entities"), 2);
    CHECK_EQ(sample(text, "batpak_appends_total"), 12);
    CHECK_EQ(sample(text, "batpak_fsyncs_total"), (double)st.fsyncs);
    CHECK(st.fsyncs >= 1);
    CHECK_EQ(sample(text, "batpak_global_seq{stage=\"published\"}"), 12);
    CHECK_EQ(sample(text, "batpak_global_seq{stage=\"synced\"}"), 12);
    CHECK_EQ(sample(text, "batpak_subscriptions"), 1);
    CHECK_EQ(sample(text, "batpak_subscription_queued"), 2);
    CHECK_EQ(sample(text, "batpak_subscription_dropped_total"), 10);
    CHECK_EQ(sample(text, "batpak_failed"), 0);
    CHECK_EQ(sample(text, "batpak_disk_bytes"), (double)st.bytes_on_disk);
    /* the histogram: cumulative, ends at +Inf == count == appends, a positive sum */
    CHECK_EQ(sample(text, "batpak_write_latency_seconds_count"), 12);
    CHECK_EQ(sample(text, "batpak_write_latency_seconds_bucket{le=\"+Inf\"}"), 12);
    CHECK(sample(text, "batpak_write_latency_seconds_sum") > 0);
    /* every append here took well under a second: the 1 s bucket holds them all */
    CHECK_EQ(sample(text, "batpak_write_latency_seconds_bucket{le=\"1.000000\"}"), 12);
    double prev = 0;
    int buckets = 0;
    for (const char *l = text; (l = strstr(l, "batpak_write_latency_seconds_bucket{le=\""));) {
        double v = strtod(strchr(l, ' ') + 1, NULL);
        CHECK(v >= prev);
        prev = v;
        buckets++;
        l++;
    }
    CHECK(buckets >= 10);
    CHECK(strstr(text, "batpak_info{version=\"" BP_VERSION_STRING "\",store_uuid=\"") != NULL);
    bp_free(text);

    CHECK_FAILS(bp_store_prometheus(s, NULL), BP_EINVAL, "NULL");
    text = (char *)1;
    CHECK_FAILS(bp_store_prometheus(NULL, &text), BP_EINVAL, "NULL");
    CHECK(text == NULL);
    bp_unsubscribe(sub);
    CHECK_OK(bp_store_close(s));

    /* a read-only handle: counts of the store, nothing done by the handle */
    o.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_OK(bp_store_prometheus(s, &text));
    CHECK_EQ(sample(text, "batpak_events"), 12);
    CHECK_EQ(sample(text, "batpak_appends_total"), 0);
    CHECK_EQ(sample(text, "batpak_read_only"), 1);
    CHECK_EQ(sample(text, "batpak_open_checkpoint_used"), 1);
    bp_free(text);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------- compaction progress */

typedef struct prog {
    int calls;
    uint64_t last_done, total;
    int backwards;
} prog;

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    prog *g = ctx;
    if (g->calls && (done < g->last_done || total != g->total)) g->backwards++;
    g->calls++;
    g->last_done = done;
    g->total = total;
}

static void test_compact_progress(void) {
    const char *dir = t_dir("observe-compact");
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.segment_size = 4096;
    o.durability = BP_NO_SYNC;
    CHECK_OK(bp_store_open(&s, dir, &o));
    uint8_t p[40] = {0xc4, 38};
    for (int i = 0; i < 3000; i++) {
        char ent[32];
        snprintf(ent, sizeof ent, "e:%d", i % 7);
        CHECK_OK(bp_append(s, NULL, ent, "sc", BP_KIND(1, 1), p, sizeof p));
    }
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 10;
    prog g = {0};
    co.progress = on_progress;
    co.progress_ctx = &g;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, &co));
    CHECK(rep.changed);
    CHECK(g.calls >= 3); /* one per 1024 events looked at, then the end */
    CHECK_EQ(g.backwards, 0);
    CHECK_EQ(g.total, rep.upto);
    CHECK_EQ(g.last_done, g.total);
    CHECK_EQ(t_count_stream(s, "e:3"), 10);

    /* a struct of another size is refused before anything is done */
    bp_compact_options other = BP_COMPACT_OPTIONS_INIT;
    other.keep_last = 5;
    other.struct_size = (uint32_t)offsetof(bp_compact_options, progress);
    CHECK_FAILS(bp_compact(s, &rep, &other), BP_EINVAL, "BP_COMPACT_OPTIONS_INIT");
    CHECK_EQ(t_count_stream(s, "e:3"), 10);
    other.struct_size = 0;
    CHECK_FAILS(bp_compact(s, &rep, &other), BP_EINVAL, "struct_size is 0");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------------ checkpoints */

static bp_status count_it(void *ctx, const bp_delivery *d) {
    (void)d;
    (*(int *)ctx)++;
    return BP_OK;
}

static void test_checkpoints_list(void) {
    const char *dir = t_dir("observe-ckpt");
    bp_store *s;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    size_t n = 99;
    CHECK_OK(bp_checkpoints_list(s, NULL, 0, &n));
    CHECK_EQ(n, 0); /* no DIR/cursors yet */
    const uint8_t p[] = {0xc0};
    for (int i = 0; i < 10; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), p, 1));
    bp_region all = BP_REGION_INIT;
    bp_worker_config wc = BP_WORKER_CONFIG_INIT;
    wc.checkpoint_id = "mailer";
    int handled = 0;
    bp_worker *w;
    CHECK_OK(bp_cursor_worker(s, &w, &all, count_it, &handled, &wc));
    for (int i = 0; i < 2000 && handled < 10; i++)
        usleep(1000);
    CHECK_OK(bp_worker_stop(w));
    CHECK_EQ(handled, 10);
    for (int i = 0; i < 7; i++)
        CHECK_OK(bp_append(s, NULL, "e:1", "s", BP_KIND(1, 1), p, 1));
    char path[1200];
    snprintf(path, sizeof path, "%s/cursors/broken.ckpt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("not a checkpoint", f);
    fclose(f);
    bp_checkpoint_info ck[4] = {BP_CHECKPOINT_INFO_INIT};
    CHECK_OK(bp_checkpoints_list(s, ck, 4, &n));
    CHECK_EQ(n, 2);
    CHECK(strcmp(ck[0].id, "broken") == 0); /* sorted by id */
    CHECK(!ck[0].valid);
    CHECK(strcmp(ck[1].id, "mailer") == 0);
    CHECK(ck[1].valid);
    CHECK_EQ(ck[1].position, 10);
    CHECK_EQ(ck[1].lag_events, 7);
    memset(ck, 0, sizeof ck); /* room for one: the first filled, the count is all */
    ck[0].struct_size = sizeof ck[0];
    CHECK_FAILS(bp_checkpoints_list(s, ck, 1, &n), BP_ETOOBIG, "room for 1");
    CHECK_EQ(n, 2);
    CHECK(strcmp(ck[0].id, "broken") == 0);
    CHECK(ck[1].id[0] == 0);
    char *text;
    CHECK_OK(bp_store_prometheus(s, &text));
    CHECK(strstr(text, "batpak_checkpoint_lag_events{id=\"mailer\"} 7\n") != NULL);
    bp_free(text);
    CHECK_FAILS(bp_checkpoints_list(s, NULL, 1, &n), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Getters that fill a struct return a status: BP_EINVAL naming the call for a NULL argument,
 * with the struct (when given, of a known size) all zero; one of an unknown size is not
 * touched. */
static void test_getters_refuse_null(void) {
    bp_subscription_stats ss = BP_SUBSCRIPTION_STATS_INIT;
    memset(&ss, 0xff, sizeof ss);
    CHECK_FAILS(bp_subscription_stats_get(NULL, &ss), BP_EINVAL, "struct_size");
    CHECK_EQ(ss.capacity, UINT32_MAX);
    ss.struct_size = sizeof ss;
    CHECK_FAILS(bp_subscription_stats_get(NULL, &ss), BP_EINVAL, "bp_subscription_stats_get");
    CHECK_EQ(ss.capacity, 0);
    CHECK_EQ(ss.struct_size, sizeof ss);
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    memset(&ws, 0xff, sizeof ws);
    ws.struct_size = sizeof ws;
    CHECK_FAILS(bp_worker_stats_get(NULL, &ws), BP_EINVAL, "bp_worker_stats_get");
    CHECK_EQ(ws.position, 0);
    CHECK_EQ(ws.last_skipped_error[0], 0);
    bp_relay_stats rs = BP_RELAY_STATS_INIT;
    memset(&rs, 0xff, sizeof rs);
    rs.struct_size = sizeof rs;
    CHECK(bp_relay_stats_get(NULL, &rs) < 0);
    CHECK_EQ(rs.published, 0);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    CHECK_FAILS(bp_store_open_report_get(NULL, &rep), BP_EINVAL, "bp_store_open_report");
    const char *dir = t_dir("observe-null");
    bp_store *s = t_open(dir, NULL);
    CHECK_FAILS(bp_store_open_report_get(s, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_open_report_get(s, &rep));
    CHECK(rep.created);
    bp_subscription *sub;
    bp_region all = BP_REGION_INIT;
    CHECK_OK(bp_subscribe_lossy(s, &sub, &all, 8));
    CHECK_FAILS(bp_subscription_stats_get(sub, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_subscription_stats_get(sub, &ss));
    CHECK_EQ(ss.capacity, 8);
    bp_unsubscribe(sub);
    CHECK_OK(bp_store_close(s));
}

int main(void) {
    RUN(test_open_observer);
    RUN(test_getters_refuse_null);
    RUN(test_prometheus);
    RUN(test_compact_progress);
    RUN(test_checkpoints_list);
    T_DONE();
}
