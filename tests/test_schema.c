/* Stored schemas (src/typed/schema.c, doc/FORMAT.md "Stored schemas"): a program records its
 * payload types in the store; any other handle, process or the CLI then renders typed
 * payloads by them (each event by its own version), checks JSON against them naming the
 * field, and prints their JSON Schema. */
#include "t.h"
#include "batpak/typed.h"

#include <sys/wait.h>

#define DEP1_FIELDS(F)                                                                             \
    F(ONE, I64, amount, 0)                                                                         \
    F(ONE, STR, memo, 8)                                                                           \
    F(OPT, U32, branch, 0)
BP_TYPE_STATIC(dep1, DEP1_FIELDS, "bank.deposit", BP_KIND(1, 0x21), 1);
#define DEP2_FIELDS(F)                                                                             \
    F(ONE, I64, amount, 0)                                                                         \
    F(ONE, STR, memo, 8)                                                                           \
    F(OPT, U32, branch, 0)                                                                         \
    F(ONE, U64, ref, 0)                                                                            \
    F(ONE, BYTES, tag, 4)                                                                          \
    F(ARR, F64, rates, 3)
BP_TYPE_STATIC(dep2, DEP2_FIELDS, "bank.deposit", BP_KIND(1, 0x21), 2);
/* the same kind and version, other fields: may not be recorded beside dep1 */
#define BAD_FIELDS(F) F(ONE, I32, amount, 0)
BP_TYPE_STATIC(bad1, BAD_FIELDS, "bank.deposit", BP_KIND(1, 0x21), 1);
/* the same name for another kind */
BP_TYPE_STATIC(other_kind, DEP1_FIELDS, "bank.deposit", BP_KIND(1, 0x22), 1);

static const t_open_opts RO = {.read_only = true, .no_create = true};

static char *json_of(bp_store *s, const bp_id *id) {
    bp_event *ev = NULL;
    char *j = NULL;
    if (bp_get(s, &ev, id) == BP_OK) (void)bp_event_json(s, &j, ev);
    bp_event_free(ev);
    return j;
}

static void test_record_and_render(void) {
    const char *dir = t_dir("schema-record");
    bp_store *w = t_open(dir, NULL);
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_schema_record(w, &r, &dep1_type));
    CHECK(r.global_seq > 0);
    CHECK_OK(bp_schema_record(w, &r, &dep1_type)); /* as stored: nothing written */
    CHECK_EQ(r.global_seq, 0);
    CHECK_OK(bp_schema_record(w, &r, &dep2_type));
    CHECK(r.global_seq > 0);
    CHECK_FAILS(bp_schema_record(w, &r, &bad1_type), BP_EEXIST, "does not match");
    CHECK_FAILS(bp_schema_record(w, &r, &other_kind_type), BP_EEXIST, "bank.deposit");
    /* events of both versions, appended typed (the version in their flags) */
    dep1 v1 = {.amount = -5, .memo = "caf\xc3\xa9", .has_branch = true, .branch = 7};
    dep2 v2 = {.amount = 9, .memo = "x", .ref = UINT64_MAX, .tag_len = 2, .tag = {0xde, 0xad}};
    v2.rates_count = 2;
    v2.rates[0] = 1.5;
    v2.rates[1] = -2;
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_typed(w, &r1, "acct:1", "bank", &dep1_type, &v1, NULL));
    CHECK_OK(bp_append_typed(w, &r2, "acct:1", "bank", &dep2_type, &v2, NULL));
    /* another handle that registered nothing renders both by the stored descriptors */
    bp_store *rd = t_open(dir, &RO);
    char *j1 = json_of(rd, &r1.event_id), *j2 = json_of(rd, &r2.event_id);
    CHECK(j1 && strcmp(j1, "{\"amount\":-5,\"memo\":\"caf\xc3\xa9\",\"branch\":7}") == 0);
    CHECK(j2 && strstr(j2, "\"ref\":\"18446744073709551615\"") && strstr(j2, "\"tag\":\"dead\"") &&
          strstr(j2, "\"rates\":[1.5,-2.0]") && !strstr(j2, "branch"));
    bp_free(j1);
    bp_free(j2);
    char *all = NULL;
    CHECK_OK(bp_schema_json(rd, &all));
    CHECK(strstr(all, "\"name\":\"bank.deposit\",\"kind\":4129,\"version\":1") != NULL);
    CHECK(strstr(all, "{\"name\":\"rates\",\"type\":\"float64\",\"shape\":\"arr\",\"n\":3}"));
    bp_free(all);
    /* a read-only handle records nothing */
    CHECK_FAILS(bp_schema_record(rd, NULL, &dep1_type), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(rd));
    CHECK_OK(bp_store_close(w));
    /* and after a reopen, by the events alone */
    w = t_open(dir, NULL);
    j1 = json_of(w, &r1.event_id);
    CHECK(j1 && strstr(j1, "\"branch\":7"));
    bp_free(j1);
    CHECK_OK(bp_store_close(w));
    t_rmdir(dir);
}

static void test_json_schema_and_checked_json(void) {
    const char *dir = t_dir("schema-json");
    bp_store *s = t_open(dir, NULL);
    CHECK_OK(bp_schema_record(s, NULL, &dep1_type));
    CHECK_OK(bp_schema_record(s, NULL, &dep2_type));
    char *js = NULL;
    CHECK_OK(bp_schema_json_schema(s, &js, BP_KIND(1, 0x21), 1));
    CHECK(strstr(js, "\"title\":\"bank.deposit\"") &&
          strstr(js, "\"required\":[\"amount\",\"memo\"]") &&
          strstr(js, "\"additionalProperties\":false") && strstr(js, "\"maxLength\":8"));
    bp_free(js);
    CHECK_OK(bp_schema_json_schema(s, &js, BP_KIND(1, 0x21), 0)); /* the newest: 2 */
    CHECK(strstr(js, "\"x-batpak-version\":2") && strstr(js, "\"maxItems\":3"));
    bp_free(js);
    CHECK_FAILS(bp_schema_json_schema(s, &js, BP_KIND(1, 0x23), 0), BP_ENOTFOUND, "0x1023");
    /* JSON checked against the newest version and written in its form */
    const char *good =
        "{\"amount\":3,\"memo\":\"hi\",\"ref\":\"12\",\"tag\":\"00ff\",\"rates\":[1]}";
    uint8_t *mp = NULL;
    size_t n = 0;
    unsigned ver = 0;
    CHECK_OK(bp_schema_encode_json(s, &mp, &n, &ver, BP_KIND(1, 0x21), good, strlen(good)));
    CHECK_EQ(ver, 2);
    dep2 back;
    CHECK_OK(bp_type_decode(&dep2_type, &back, mp, n));
    CHECK(back.amount == 3 && back.ref == 12 && back.tag_len == 2 && back.tag[1] == 0xff &&
          back.rates_count == 1 && back.rates[0] == 1.0 && !back.has_branch);
    bp_free(mp);
    struct {
        const char *json, *want;
    } bad[] = {
        {"{\"memo\":\"x\",\"ref\":1,\"tag\":\"\",\"rates\":[]}",
         "field 'amount' (int64) is missing"},
        {"{\"amount\":1,\"memo\":\"x\",\"ref\":1,\"tag\":\"\",\"rates\":[],\"zz\":1}",
         "field 'zz'"},
        {"{\"amount\":1.5,\"memo\":\"x\",\"ref\":1,\"tag\":\"\",\"rates\":[]}",
         "field 'amount' (int64): not an integer"},
        {"{\"amount\":1,\"memo\":\"123456789\",\"ref\":1,\"tag\":\"\",\"rates\":[]}",
         "field 'memo' (string): longer than its bound"},
        {"{\"amount\":1,\"memo\":\"x\",\"ref\":-1,\"tag\":\"\",\"rates\":[]}",
         "field 'ref' (uint64): out of range"},
        {"{\"amount\":1,\"memo\":\"x\",\"ref\":1,\"tag\":\"0G\",\"rates\":[]}",
         "field 'tag' (bytes): not lower-case hex"},
        {"{\"amount\":1,\"memo\":\"x\",\"ref\":1,\"tag\":\"\",\"rates\":[1,2,3,4]}",
         "field 'rates' (array of float64): more elements"},
        {"[1]", "must be a JSON object"},
        {"{", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bp_status rc = bp_schema_encode_json(s, &mp, &n, &ver, BP_KIND(1, 0x21), bad[i].json,
                                             strlen(bad[i].json));
        CHECK_EQ(rc, BP_EINVAL);
        CHECK(mp == NULL && n == 0);
        if (!strstr(bp_last_error(), bad[i].want))
            fprintf(stderr, "bad[%zu]: %s\n", i, bp_last_error());
        CHECK(strstr(bp_last_error(), bad[i].want) != NULL);
    }
    CHECK_EQ(bp_schema_encode_json(s, &mp, &n, &ver, BP_KIND(1, 0x23), "{}", 2), BP_ENOTFOUND);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* The CLI: schema lists and prints the JSON Schema; append checks a typed kind's payload. */
static int cli(const char *dir, const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --dir '%s' %s 2>&1", BP_CLI, dir, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    const char *dir = t_dir("schema-cli");
    bp_store *s = t_open(dir, NULL);
    CHECK_OK(bp_schema_record(s, NULL, &dep1_type));
    CHECK_OK(bp_store_close(s));
    char out[8192];
    CHECK_EQ(cli(dir, "schema", out, sizeof out), 0);
    CHECK(strstr(out, "\"name\":\"bank.deposit\"") != NULL);
    CHECK_EQ(cli(dir, "schema --json-schema bank.deposit", out, sizeof out), 0);
    CHECK(strstr(out, "\"$schema\"") && strstr(out, "\"amount\""));
    CHECK_EQ(cli(dir, "schema --json-schema 0x1021 --version 1", out, sizeof out), 0);
    CHECK_EQ(cli(dir, "schema --json-schema no.such.type", out, sizeof out), 1);
    CHECK_EQ(cli(dir, "schema --json-schema 0x1777", out, sizeof out), 2);
    CHECK(strstr(out, "no schema") != NULL);
    /* a payload that is not a value of the type: exit 1 naming the field, nothing appended */
    CHECK_EQ(
        cli(dir, "append acct:1 bank 0x1021 '{\"amount\":\"x\",\"memo\":\"m\"}'", out, sizeof out),
        1);
    CHECK(strstr(out, "field 'amount'") != NULL);
    CHECK_EQ(cli(dir, "append acct:1 bank 0x1021 '{\"amount\":4,\"memo\":\"m\"}'", out, sizeof out),
             0);
    CHECK_EQ(cli(dir, "stream acct:1", out, sizeof out), 0);
    CHECK(strstr(out, "\"amount\":4") != NULL);
    CHECK(strstr(out, "\"field 'amount'") == NULL);
    /* other kinds take any JSON */
    CHECK_EQ(cli(dir, "append acct:1 bank 0x1030 '[1,2]'", out, sizeof out), 0);
    /* a batch: each line of a typed kind checked, the line named; nothing appended */
    char batch[4200], args[4400];
    snprintf(batch, sizeof batch, "%s/batch.ndjson", dir);
    FILE *f = fopen(batch, "w");
    CHECK(f != NULL);
    fputs("{\"entity\":\"acct:2\",\"scope\":\"bank\",\"kind\":\"0x1021\","
          "\"payload\":{\"amount\":1,\"memo\":\"a\"}}\n"
          "{\"entity\":\"acct:2\",\"scope\":\"bank\",\"kind\":\"0x1030\",\"payload\":7}\n"
          "{\"entity\":\"acct:2\",\"scope\":\"bank\",\"kind\":\"0x1021\","
          "\"payload\":{\"amount\":2}}\n",
          f);
    fclose(f);
    snprintf(args, sizeof args, "append --batch '%s'", batch);
    CHECK_EQ(cli(dir, args, out, sizeof out), 1);
    CHECK(strstr(out, "line 3: payload:") && strstr(out, "field 'memo' (string) is missing"));
    CHECK_EQ(cli(dir, "stream acct:2", out, sizeof out), 2); /* (none appended) */
    f = fopen(batch, "w");
    CHECK(f != NULL);
    fputs("{\"entity\":\"acct:2\",\"scope\":\"bank\",\"kind\":\"0x1021\","
          "\"payload\":{\"amount\":1,\"memo\":\"a\"}}\n"
          "{\"entity\":\"acct:2\",\"scope\":\"bank\",\"kind\":\"0x1030\",\"payload\":7}\n",
          f);
    fclose(f);
    CHECK_EQ(cli(dir, args, out, sizeof out), 0);
    CHECK_EQ(cli(dir, "stream acct:2", out, sizeof out), 0);
    CHECK(strstr(out, "\"amount\":1") && strstr(out, "\"payload\":7"));
    /* schema --record: what `batpak schema` prints, recorded in another store */
    const char *dir2 = t_dir("schema-cli2");
    char list[4200];
    snprintf(list, sizeof list, "%s/types.ndjson", dir2);
    snprintf(args, sizeof args, "schema > '%s'", list);
    CHECK_EQ(cli(dir, args, out, sizeof out), 0);
    CHECK_EQ(cli(dir2, "init", out, sizeof out), 0);
    snprintf(args, sizeof args, "schema --record '%s'", list);
    CHECK_EQ(cli(dir2, args, out, sizeof out), 0);
    CHECK(strstr(out, "\"global_seq\":") && !strstr(out, "\"global_seq\":0"));
    CHECK_EQ(cli(dir2, args, out, sizeof out), 0); /* again: nothing written */
    CHECK(strstr(out, "\"global_seq\":0") != NULL);
    CHECK_EQ(cli(dir2, "schema", out, sizeof out), 0);
    CHECK(strstr(out, "bank.deposit") != NULL);
    f = fopen(list, "w");
    CHECK(f != NULL);
    fputs("{\"name\":\"x\",\"kind\":4400,\"version\":1,\"fields\":[{\"name\":\"a\","
          "\"type\":\"int9\",\"shape\":\"one\",\"n\":0}]}\n",
          f);
    fclose(f);
    CHECK_EQ(cli(dir2, args, out, sizeof out), 1);
    CHECK(strstr(out, "line 1:") && strstr(out, "not a valid type"));
    t_rmdir(dir2);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_record_and_render);
    RUN(test_json_schema_and_checked_json);
    RUN(test_cli);
    T_DONE();
}
