/* Control plane, export and import: export -> import -> export byte-identical over batches,
 * causation, keys, binary payloads and system events, a resumed import, altered or malformed
 * exports each refused at its line with what came before kept; and bp_commit_imported's own
 * chain checks. */
#include "t.h"
#include "format/format.h"
#include "store/store_impl.h"

/* ---------------------------------------------------------- export/import */

/* Import text (NDJSON) into s line by line; rc of the first failure or of the end. */
static bp_status import_text(bp_store *s, const char *text, bp_import_report *rep) {
    bp_importer *imp;
    bp_status rc = bp_import_begin(s, &imp);
    if (rc) return rc;
    for (const char *p = text; *p && !rc;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        rc = bp_import_line(imp, p, len);
        p += len;
    }
    char msg[700];
    snprintf(msg, sizeof msg, "%s", bp_last_error());
    bp_status erc = bp_import_end(imp, rep);
    if (rc) {
        bp_set_error(rc, "%s", msg);
        return rc;
    }
    return erc;
}

/* A source with every kind of event: batches, causation, idempotency keys, schema flags,
 * binary payloads of every length 0..40, several segments. */
static void fill_source(bp_store *s) {
    uint8_t bin[40];
    for (int i = 0; i < 40; i++)
        bin[i] = (uint8_t)(i * 37 + 255);
    bp_receipt r = BP_RECEIPT_INIT;
    for (int i = 0; i <= 40; i++) {
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        char key[32];
        snprintf(key, sizeof key, "k-%d", i);
        o.idempotency_key = i % 3 ? NULL : key;
        o.causation_id = i ? &r.event_id : NULL;
        o.schema_version = (uint8_t)(i % 4);
        bp_append_ex(s, &r, i % 2 ? "acct:\xc3\xa9t\xc3\xa9" : "acct:\"quoted\"\\", "bank",
                     BP_KIND(1, 1 + i % 5), bin, (size_t)i, &o);
        if (i % 10 == 5) {
            bp_batch_item two[3] = {{"order:1", "shop", BP_KIND(2, 1), "a", 1, NULL},
                                    {"stock:1", "shop", BP_KIND(2, 2), bin, 40, NULL},
                                    {"order:1", "shop", BP_KIND(2, 3), NULL, 0, NULL}};
            bp_append_batch(s, NULL, two, 3);
        }
    }
}

static void test_export_import_round_trip(void) {
    const char *src = t_dir("export-src"), *dst = t_dir("export-dst");
    bp_store *s;
    CHECK_OK(bp_store_open(&s, src, NULL)); /* its SYSTEM_OPEN_COMPLETED event travels too */
    CHECK_OK(bp_store_close(s));
    s = t_open(src, &(t_open_opts){.segment_size = 8192});
    CHECK(s != NULL);
    fill_source(s);
    t_membuf a = {0}, b = {0};
    CHECK_OK(bp_export(s, t_to_mem, &a, NULL));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments > 1);
    bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK(d != NULL);
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    CHECK_OK(import_text(d, a.p, &rep));
    CHECK_EQ(rep.imported, st.events);
    CHECK_EQ(rep.lines, st.events);
    CHECK_OK(bp_export(d, t_to_mem, &b, NULL));
    CHECK_EQ(a.n, b.n);
    CHECK(memcmp(a.p, b.p, a.n) == 0); /* byte-identical */
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(d, &vr, NULL));
    /* the imported store is a store: appends chain on, ids and hlc move forward */
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r1, "order:1", "shop", BP_KIND(2, 1), "z", 1));
    CHECK_OK(bp_append(d, &r2, "order:1", "shop", BP_KIND(2, 1), "z", 1));
    CHECK_EQ(r1.clock, r2.clock);
    CHECK(memcmp(r1.prev_hash.b, r2.prev_hash.b, 32) == 0);
    CHECK(r2.hlc > 0);
    /* idempotency keys came along */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "k-3";
    bp_receipt rr = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(d, &rr, "acct:\xc3\xa9t\xc3\xa9", "bank", BP_KIND(1, 1), "q", 1, &o));
    CHECK(rr.replayed);
    /* after_seq: the tail only */
    t_membuf c = {0};
    bp_export_options eo = BP_EXPORT_OPTIONS_INIT;
    eo.after_seq = st.events - 2;
    CHECK_OK(bp_export(s, t_to_mem, &c, &eo));
    CHECK(strncmp(c.p, "{\"global_seq\":", 14) == 0);
    CHECK_EQ(strtoull(c.p + 14, NULL, 10), st.events - 1);
    CHECK_OK(bp_store_close(s));
    CHECK_OK(bp_store_close(d));
    /* an interrupted import runs again: what is there is skipped */
    t_rmdir(dst);
    d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    char *half = strdup(a.p);
    char *cut = half;
    for (int i = 0; i < 20; i++)
        cut = strchr(cut, '\n') + 1;
    *cut = '\0';
    CHECK_OK(import_text(d, half, &rep));
    CHECK_EQ(rep.imported, 20);
    CHECK_OK(import_text(d, a.p, &rep));
    CHECK_EQ(rep.skipped, 20);
    CHECK_EQ(rep.imported, st.events - 20);
    free(b.p);
    b = (t_membuf){0};
    CHECK_OK(bp_export(d, t_to_mem, &b, NULL));
    CHECK(b.n == a.n && memcmp(a.p, b.p, a.n) == 0);
    CHECK_OK(bp_store_close(d));
    free(half);
    free(a.p);
    free(b.p);
    free(c.p);
    t_rmdir(src);
    t_rmdir(dst);
}

/* Replace the first occurrence of from in line number n (1-based) of text: a new string. */
static char *edit_line(const char *text, int n, const char *from, const char *to) {
    const char *p = text;
    for (int i = 1; i < n; i++)
        p = strchr(p, '\n') + 1;
    const char *at = strstr(p, from);
    if (!at) return NULL;
    size_t pre = (size_t)(at - text);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

/* Drop line n. */
static char *drop_line(const char *text, int n) {
    const char *p = text;
    for (int i = 1; i < n; i++)
        p = strchr(p, '\n') + 1;
    const char *end = strchr(p, '\n') + 1;
    char *out = malloc(strlen(text) + 1);
    memcpy(out, text, (size_t)(p - text));
    strcpy(out + (p - text), end);
    return out;
}

/* Every bad line is refused naming its line; the lines before it are imported (a batch
 * only whole). */
static void test_import_refusals(void) {
    const char *src = t_dir("import-src"), *dst = t_dir("import-dst");
    bp_store *s = t_open(src, &(t_open_opts){.segment_size = 8192});
    CHECK(s != NULL);
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "abc", 3));
    bp_batch_item two[2] = {{"e", "x", BP_KIND(1, 2), "b1", 2, NULL},
                            {"f", "x", BP_KIND(1, 2), "b2", 2, NULL}};
    CHECK_OK(bp_append_batch(s, NULL, two, 2));                      /* lines 6 and 7 */
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "abc", 3)); /* line 8 */
    t_membuf a = {0};
    CHECK_OK(bp_export(s, t_to_mem, &a, NULL));
    CHECK_OK(bp_store_close(s));
    struct {
        char *text;
        bp_status rc;
        const char *needle;
        uint64_t kept; /* events imported before the refusal */
    } cases[] = {
        {edit_line(a.p, 3, "\"payload\":\"YWJj\"", "\"payload\":\"YWJk\""), BP_ECORRUPT,
         "line 3: event_hash does not match", 2},
        {edit_line(a.p, 4, "\"clock\":4", "\"clock\":9"), BP_ECORRUPT, "line 4: event_hash", 3},
        {drop_line(a.p, 3), BP_ECONFLICT, "line 3: global_seq 4, but the store's next is 3", 2},
        {edit_line(a.p, 2, "{", "["), BP_EINVAL, "line 2: not JSON", 1},
        {edit_line(a.p, 2, "\"flags\":0", "\"flags\":0,\"extra\":1"), BP_EINVAL,
         "line 2: unknown field 'extra'", 1},
        {edit_line(a.p, 2, "\"flags\":0,", ""), BP_EINVAL, "line 2: field 'flags' is missing", 1},
        {edit_line(a.p, 2, "\"kind\":4097", "\"kind\":\"4097\""), BP_EINVAL,
         "line 2: field 'kind' is of the wrong type", 1},
        {edit_line(a.p, 2, "\"kind\":4097", "\"kind\":70000"), BP_EINVAL, "line 2: field 'kind'",
         1},
        {edit_line(a.p, 2, "\"payload\":\"YWJj\"", "\"payload\":\"YWJ\""), BP_EINVAL,
         "line 2: field 'payload' is not base64", 1},
        {edit_line(a.p, 2, "\"payload\":\"YWJj\"", "\"payload\":\"YR==\""), BP_EINVAL, "not base64",
         1},
        {edit_line(a.p, 2, "\"event_hash\":\"", "\"event_hash\":\"X"), BP_EINVAL,
         "line 2: event_hash and prev_hash", 1},
        {edit_line(a.p, 2, "\"entity\":\"e\"", "\"entity\":\"\""), BP_EINVAL, "line 2:", 1},
        {drop_line(a.p, 7), BP_EINVAL, "line 7: batch 6 (from line 6) has 1 of its 2 events", 5},
        {drop_line(a.p, 6), BP_EINVAL, "line 6: batch 6 starts at index 1, not 0", 5},
        {edit_line(a.p, 7, "\"count\":2", "\"count\":3"), BP_ECORRUPT, "line 7: event_hash", 5},
        {edit_line(a.p, 7, "\"flags\":0", "\"flags\":-1"), BP_EINVAL, "line 7: field 'flags'", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cases[i].text != NULL);
        t_rmdir(dst);
        bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
        CHECK(d != NULL);
        bp_import_report rep = BP_IMPORT_REPORT_INIT;
        bp_status rc = import_text(d, cases[i].text, &rep);
        if (rc != cases[i].rc || !strstr(bp_last_error(), cases[i].needle))
            fprintf(stderr, "  case %zu: %d %s\n", i, rc, bp_last_error());
        CHECK_EQ(rc, cases[i].rc);
        CHECK(strstr(bp_last_error(), cases[i].needle) != NULL);
        bp_store_stats st = BP_STORE_STATS_INIT;
        CHECK_OK(bp_store_stats_get(d, &st));
        CHECK_EQ(st.events, cases[i].kept);
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_OK(bp_store_verify(d, &vr, NULL));
        CHECK_OK(bp_store_close(d));
        free(cases[i].text);
    }
    /* a batch cut at the end of the input */
    char *cut = strdup(a.p);
    char *line7 = cut;
    for (int i = 1; i < 7; i++)
        line7 = strchr(line7, '\n') + 1;
    *line7 = '\0';
    t_rmdir(dst);
    bp_store *d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK_FAILS(import_text(d, cut, NULL), BP_EINVAL, "end of input: batch 6 (from line 6)");
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(d, &st));
    CHECK_EQ(st.events, 5);
    free(cut);
    /* a store with events of its own */
    CHECK_OK(bp_store_close(d));
    t_rmdir(dst);
    d = t_open(dst, &(t_open_opts){.segment_size = 8192});
    CHECK_OK(bp_append(d, NULL, "mine", "x", BP_KIND(1, 1), "m", 1));
    CHECK_FAILS(import_text(d, a.p, NULL), BP_ECONFLICT, "line 1: this store holds another event");
    bp_importer *imp;
    CHECK_OK(bp_import_begin(d, &imp));
    CHECK_FAILS(bp_import_line(imp, "", 0), BP_EINVAL, "line 1: empty");
    CHECK_FAILS(bp_import_line(imp, "{}", 2), BP_EINVAL, "earlier error: line 1: empty");
    CHECK_FAILS(bp_import_end(imp, NULL), BP_EINVAL, "line 1: empty");
    CHECK_FAILS(bp_import_line(NULL, "x", 1), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_import_begin(NULL, &imp), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_export(NULL, t_to_mem, NULL, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(d));
    bp_open_options ro = BP_OPEN_OPTIONS_INIT;
    ro.read_only = true;
    CHECK_OK(bp_store_open(&d, dst, &ro));
    CHECK_FAILS(bp_import_begin(d, &imp), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(d));
    free(a.p);
    t_rmdir(src);
    t_rmdir(dst);
}

/* ------------------------------------------------------- commit_imported */

/* bp_commit_imported checks each frame against the store itself (the importer's own chain
 * check runs one layer up, so only a direct call reaches these): a clock that does not
 * continue the entity's chain, or a prev_hash that is not its head's hash, is refused with
 * nothing written. */
static void test_commit_imported_checks(void) {
    const char *src_dir = t_dir("imported-src");
    const char *dst_dir = t_dir("imported-dst");
    bp_store *src = t_open(src_dir, NULL);
    bp_store *dst = t_open(dst_dir, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(src, NULL, "acct:1", "bank", BP_KIND(1, 1), "abc", 3));
    bp_buf body[3] = {{0}, {0}, {0}};
    bp_frame fr[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bp_read_body(src, (uint64_t)i + 1, &body[i]));
        CHECK_OK(bp_frame_decode(body[i].data, body[i].len, &fr[i]));
    }
    size_t bad;
    CHECK_OK(bp_commit_imported(dst, &fr[0], 1, false, &bad)); /* the chain's start */
    bp_frame f = fr[1];
    f.f.clock = 3; /* skips clock 2 (prev_hash is still the head's) */
    CHECK_FAILS(bp_commit_imported(dst, &f, 1, false, &bad), BP_ECONFLICT,
                "clock 3, but its head is at 1");
    f = fr[1];
    f.f.prev_hash.b[0] ^= 1; /* clock 2, chained to something else */
    CHECK_FAILS(bp_commit_imported(dst, &f, 1, false, &bad), BP_ECONFLICT,
                "prev_hash is not the hash of its previous event");
    bp_frame two[2] = {fr[1], fr[2]}; /* a bad second frame: the first is not written */
    two[1].f.prev_hash.b[5] ^= 1;
    CHECK_FAILS(bp_commit_imported(dst, two, 2, true, &bad), BP_ECONFLICT, "prev_hash");
    CHECK_EQ(bad, 1);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(dst, &st));
    CHECK_EQ(st.events, 1);
    CHECK_OK(bp_commit_imported(dst, &fr[1], 2, true, &bad)); /* the real ones continue it */
    CHECK_OK(bp_store_stats_get(dst, &st));
    CHECK_EQ(st.events, 3);
    for (int i = 0; i < 3; i++)
        bp_buf_free(&body[i]);
    CHECK_OK(bp_store_close(src));
    CHECK_OK(bp_store_close(dst));
    t_rmdir(src_dir);
    t_rmdir(dst_dir);
}

/* A sealing store's export (payloads still sealed) imported into a store that does not seal:
 * the importing store turns sealing on (DIR/dkeys), so it opens again (a store with sealed
 * events and no DIR/dkeys is refused as having lost its keys: the import used to exit 0 and
 * leave such a store); the payloads read as forgotten until the source's key files are copied
 * into DIR/dkeys/, then as they were; its new appends are sealed. */
static void test_import_sealed_export(void) {
    const char *src = t_dir("import-sealed-src"), *dst = t_dir("import-sealed-dst");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.seal_payloads = true;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, src, &o));
    CHECK_OK(bp_append(s, NULL, "user:1", "crm", BP_KIND(1, 1), "secret", 6));
    t_membuf a = {0};
    CHECK_OK(bp_export(s, t_to_mem, &a, NULL));
    CHECK_OK(bp_store_close(s));
    bp_store *d = t_open(dst, NULL);
    CHECK(d != NULL);
    CHECK(!bp_store_seals(d));
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    CHECK_OK(import_text(d, a.p, &rep));
    CHECK_EQ(rep.imported, 1);
    CHECK(bp_store_seals(d));
    CHECK_OK(bp_store_close(d));
    CHECK_OK(t_open_try(&d, dst, &(t_open_opts){.no_create = true})); /* opens again */
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(d, &it, "user:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->payload_forgotten); /* no key here yet */
    bp_iter_free(it);
    CHECK_OK(bp_append(d, NULL, "user:2", "crm", BP_KIND(1, 1), "new", 3));
    CHECK_OK(bp_stream(d, &it, "user:2", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->flags & BP_EVENT_SEALED);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(d));
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cp '%s'/dkeys/* '%s/dkeys/'", src, dst);
    CHECK_EQ(system(cmd), 0);
    CHECK_OK(t_open_try(&d, dst, &(t_open_opts){.no_create = true}));
    CHECK_OK(bp_stream(d, &it, "user:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(!ev->payload_forgotten); /* the source's key opens it */
    CHECK(ev->payload_len == 6 && memcmp(ev->payload, "secret", 6) == 0);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(d));
    free(a.p);
    t_rmdir(src);
    t_rmdir(dst);
}

int main(void) {
    RUN(test_export_import_round_trip);
    RUN(test_import_refusals);
    RUN(test_commit_imported_checks);
    RUN(test_import_sealed_export);
    T_DONE();
}
