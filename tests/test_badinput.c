/* Bad input through the public API: every rejected call returns the code its
 * header documents, leaves a fresh, non-empty bp_last_error() that says what was
 * wrong, and writes nothing (stats.events unchanged, and unchanged after a
 * reopen). */
#include "t.h"
#include "core/core.h"

/* Arm the last error with a message that no call under test can produce, so
 * that a failing call which forgets to set its own message is caught. */
static void arm(void) {
    bp_id id;
    (void)bp_id_parse(&id, "xyzzy-sentinel");
}

/* expr must fail with code, leaving a fresh message that contains needle (if
 * not NULL). */
#define CHECK_ERR(expr, code, needle)                                                              \
    do {                                                                                           \
        arm();                                                                                     \
        int _got = (expr);                                                                         \
        const char *_needle = (needle);                                                            \
        CHECK_EQ(_got, (code));                                                                    \
        CHECK(bp_last_error()[0] != '\0');                                                         \
        CHECK(strstr(bp_last_error(), "xyzzy-sentinel") == NULL);                                  \
        if (_needle && !strstr(bp_last_error(), _needle))                                          \
            fprintf(stderr, "message lacks '%s'\n", _needle);                                      \
        CHECK(!_needle || strstr(bp_last_error(), _needle) != NULL);                               \
    } while (0)

/* The stores of these tests: payloads up to 1 KiB, appends synced at close only (BP_NO_SYNC);
 * and the same read-only. */
static const t_open_opts OPTS = {.max_payload = 1024, .durability = {.mode = BP_DUR_NONE}};
static const t_open_opts OPTS_RO = {
    .max_payload = 1024, .durability = {.mode = BP_DUR_NONE}, .read_only = true};

static uint64_t events_of(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_stats_get(s, &st) != BP_OK) return (uint64_t)-1;
    return st.events;
}

/* Events in the store at dir, seen through a fresh read-only open. */
static uint64_t events_after_reopen(const char *dir) {
    bp_store *s;
    if (t_open_try(&s, dir, &OPTS_RO) != BP_OK) {
        fprintf(stderr, "reopen: %s\n", bp_last_error());
        return (uint64_t)-1;
    }
    uint64_t n = events_of(s);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    if (bp_store_verify(s, &vr, NULL) != BP_OK) {
        fprintf(stderr, "verify: %s\n", vr.first_problem);
        n = (uint64_t)-2;
    }
    bp_store_close(s);
    return n;
}

/* A store with 3 events in dir; *s open on it (writable). */
static bool fresh(bp_store **s, const char *dir) {
    if (t_open_try(s, dir, &OPTS) != BP_OK) return false;
    return bp_append(*s, NULL, "acct:1", "bank", 0x1001, "a", 1) == BP_OK &&
           bp_append(*s, NULL, "acct:2", "bank", 0x1001, "b", 1) == BP_OK &&
           bp_append(*s, NULL, "acct:1", "bank", 0x1002, "c", 1) == BP_OK;
}

static bool is_dir_empty_or_missing(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
    return system(cmd) == 0;
}

/* ------------------------------------------------------------ cases */

static void test_bad_coordinates(void) {
    const char *dir = t_dir("bad-coord");
    bp_store *s;
    CHECK(fresh(&s, dir));
    char e256[257], e255[256], mb256[257];
    memset(e256, 'e', 256);
    e256[256] = '\0';
    memset(e255, 'e', 255);
    e255[255] = '\0';
    memset(mb256, 'm', 254); /* 254 bytes + a 2-byte character = 256 bytes */
    memcpy(mb256 + 254, "\xc3\xbc", 3);
    CHECK_ERR(bp_append(s, NULL, "", "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
    CHECK_ERR(bp_append(s, NULL, e256, "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
    CHECK_ERR(bp_append(s, NULL, mb256, "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
    /* bytes the validator rejects: not UTF-8 */
    const char *bad_utf8[] = {
        "\xff",             /* never valid */
        "acct:\x80",        /* lone continuation byte */
        "acct:\xc3",        /* truncated 2-byte sequence */
        "a\xc0\x80z",       /* overlong NUL */
        "a\xe0\x80\xafz",   /* overlong '/' */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80",
        "x\xe2\x82y", /* truncated 3-byte sequence followed by ASCII */
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        CHECK_ERR(bp_append(s, NULL, bad_utf8[i], "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
        CHECK(strstr(bp_last_error(), "UTF-8") != NULL);
        CHECK_ERR(bp_append(s, NULL, "acct:1", bad_utf8[i], 0x1001, "x", 1), BP_EINVAL, "scope");
        CHECK_ERR(bp_coord_validate("entity", bad_utf8[i]), BP_EINVAL, "UTF-8");
    }
    /* reserved for the library */
    CHECK_ERR(bp_append(s, NULL, "batpak:store", "bank", 0x1001, "x", 1), BP_EINVAL, "reserved");
    CHECK_ERR(bp_append(s, NULL, "batpak:", "bank", 0x1001, "x", 1), BP_EINVAL, "batpak:");
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    CHECK_ERR(bp_append_ex(s, NULL, "batpak:x", "bank", 0x1001, "x", 1, &o), BP_EINVAL, "reserved");
    /* scope */
    CHECK_ERR(bp_append(s, NULL, "acct:1", "", 0x1001, "x", 1), BP_EINVAL, "scope");
    CHECK_ERR(bp_append(s, NULL, "acct:1", e256, 0x1001, "x", 1), BP_EINVAL, "scope");
    CHECK_ERR(bp_append(s, NULL, "acct:1", NULL, 0x1001, "x", 1), BP_EINVAL, "scope");
    CHECK_ERR(bp_append(s, NULL, NULL, "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
    /* the same through a batch item */
    bp_batch_item bi = {"", "bank", 0x1001, "x", 1, NULL};
    CHECK_ERR(bp_append_batch(s, NULL, &bi, 1), BP_EINVAL, "entity");
    CHECK_EQ(events_of(s), 3);
    /* the boundaries are accepted */
    CHECK_OK(bp_append(s, NULL, e255, e255, 0x1001, "x", 1));
    CHECK_OK(bp_append(s, NULL, "batpak", "bank", 0x1001, "x", 1)); /* no ':' */
    CHECK_OK(bp_append(s, NULL, "z\xc3\xbcrich:\xf0\x9f\x98\x80", "bank", 0x1001, "x", 1));
    CHECK_EQ(events_of(s), 6);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 6);
    t_rmdir(dir);
}

static void test_bad_kinds(void) {
    const char *dir = t_dir("bad-kind");
    bp_store *s;
    CHECK(fresh(&s, dir));
    const uint16_t bad[] = {0x0000, BP_KIND_SYSTEM_OPEN_COMPLETED,  BP_KIND_SYSTEM_TOMBSTONE,
                            0x0FFF, BP_KIND(BP_CATEGORY_EFFECT, 0), 0xD001,
                            0xDFFF};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_ERR(bp_append(s, NULL, "acct:1", "bank", bad[i], "x", 1), BP_EINVAL, "kind");
        bp_batch_item items[2] = {{"acct:1", "bank", 0x1001, "x", 1, NULL},
                                  {"acct:1", "bank", bad[i], "x", 1, NULL}};
        CHECK_ERR(bp_append_batch(s, NULL, items, 2), BP_EINVAL, "kind");
    }
    CHECK_EQ(events_of(s), 3);
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0x1000, "x", 1));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0xCFFF, "x", 1));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0xE000, "x", 1));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0xFFFF, "x", 1));
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 7);
    t_rmdir(dir);
}

static void test_payload_limit(void) {
    const char *dir = t_dir("bad-payload");
    bp_store *s;
    CHECK(fresh(&s, dir)); /* max_payload = 1024 */
    static uint8_t big[BP_MAX_PAYLOAD + 2];
    CHECK_ERR(bp_append(s, NULL, "acct:1", "bank", 0x1001, big, 1025), BP_ETOOBIG, "1024");
    CHECK_ERR(bp_append(s, NULL, "acct:1", "bank", 0x1001, big, BP_MAX_PAYLOAD + 1), BP_ETOOBIG,
              NULL);
    bp_batch_item items[2] = {{"acct:1", "bank", 0x1001, big, 10, NULL},
                              {"acct:2", "bank", 0x1001, big, 2000, NULL}};
    CHECK_ERR(bp_append_batch(s, NULL, items, 2), BP_ETOOBIG, "batch item 1");
    CHECK_EQ(events_of(s), 3);
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0x1001, big, 1024));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0x1001, NULL, 0)); /* empty payload */
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 5);
    t_rmdir(dir);
}

static void test_null_arguments(void) {
    const char *dir = t_dir("bad-null");
    bp_store *s;
    CHECK(fresh(&s, dir));
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_ERR(bp_append(NULL, &r, "acct:1", "bank", 0x1001, "x", 1), BP_EINVAL, NULL);
    CHECK_ERR(bp_append_ex(NULL, &r, "acct:1", "bank", 0x1001, "x", 1, NULL), BP_EINVAL, NULL);
    bp_batch_item it = {"acct:1", "bank", 0x1001, "x", 1, NULL};
    CHECK_ERR(bp_append_batch(NULL, &r, &it, 1), BP_EINVAL, NULL);
    CHECK_ERR(bp_append_batch(s, &r, NULL, 2), BP_EINVAL, NULL);
    CHECK_ERR(bp_append(s, &r, NULL, "bank", 0x1001, "x", 1), BP_EINVAL, "entity");
    CHECK_ERR(bp_append(s, &r, "acct:1", NULL, 0x1001, "x", 1), BP_EINVAL, "scope");
    CHECK_ERR(bp_append(s, &r, "acct:1", "bank", 0x1001, NULL, 3), BP_EINVAL, "payload");
    bp_batch_item items[2] = {{"acct:1", "bank", 0x1001, "x", 1, NULL},
                              {"acct:1", "bank", 0x1001, NULL, 5, NULL}};
    CHECK_ERR(bp_append_batch(s, NULL, items, 2), BP_EINVAL, "payload");
    /* reads and the rest */
    bp_event *ev = (bp_event *)&r;
    bp_id id = {{0}};
    CHECK_ERR(bp_get(NULL, &ev, &id), BP_EINVAL, NULL);
    CHECK(ev == NULL);
    CHECK_ERR(bp_get(s, &ev, NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_get(s, NULL, &id), BP_EINVAL, NULL);
    bp_iter *iter = (bp_iter *)&r;
    CHECK_ERR(bp_stream(s, &iter, NULL, BP_READ_FULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_by_scope(s, &iter, NULL, BP_READ_FULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_query(s, &iter, NULL, BP_READ_FULL), BP_EINVAL, NULL);
    CHECK(iter == NULL);
    CHECK_ERR(bp_query(NULL, &iter, &(bp_region)BP_REGION_INIT, BP_READ_FULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_query(s, NULL, &(bp_region)BP_REGION_INIT, BP_READ_FULL), BP_EINVAL, NULL);
    const bp_event *cev;
    CHECK_ERR(bp_iter_next(NULL, &cev), BP_EINVAL, NULL);
    CHECK_ERR(bp_entity_head(s, NULL, NULL, NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_entity_head(NULL, NULL, NULL, "acct:1"), BP_EINVAL, NULL);
    CHECK_ERR(bp_coord_validate("entity", NULL), BP_EINVAL, "entity");
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_ERR(bp_store_stats_get(NULL, &st), BP_EINVAL, NULL);
    CHECK_ERR(bp_store_stats_get(s, NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_store_verify(NULL, NULL, NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_store_verify(s, NULL, NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_store_sync(NULL), BP_EINVAL, NULL);
    CHECK_ERR(bp_id_parse(NULL, "01020304-0506-7708-890a-0b0c0d0e0f10"), BP_EINVAL, NULL);
    CHECK_ERR(bp_id_parse(&id, NULL), BP_EINVAL, NULL);
    bp_store *s2 = (bp_store *)&r;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    CHECK_ERR(bp_store_open(NULL, dir, &o), BP_EINVAL, NULL);
    CHECK_ERR(bp_store_open(&s2, NULL, &o), BP_EINVAL, NULL);
    CHECK(s2 == NULL);
    CHECK_ERR(bp_store_open(&s2, "", &o), BP_EINVAL, NULL);
    CHECK_EQ(events_of(s), 3);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 3);
    t_rmdir(dir);
}

static void test_cas_conflicts(void) {
    const char *dir = t_dir("bad-cas");
    bp_store *s;
    CHECK(fresh(&s, dir)); /* acct:1 is at clock 2, acct:2 at 1 */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    const uint64_t wrong[] = {0, 1, 3, 100, UINT64_MAX};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        o.expected_clock = wrong[i];
        CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &o), BP_ECONFLICT,
                  "acct:1");
    }
    o.expected_clock = 1; /* an unknown entity is at clock 0 */
    CHECK_ERR(bp_append_ex(s, NULL, "acct:new", "bank", 0x1001, "x", 1, &o), BP_ECONFLICT,
              "acct:new");
    /* in a batch: the second item's expectation fails, the first is not written */
    bp_append_options ok = BP_APPEND_OPTIONS_INIT, bad = BP_APPEND_OPTIONS_INIT;
    ok.has_expected_clock = bad.has_expected_clock = true;
    ok.expected_clock = 2;
    bad.expected_clock = 2; /* acct:1 is at 3 after the first item */
    bp_batch_item items[2] = {{"acct:1", "bank", 0x1001, "x", 1, &ok},
                              {"acct:1", "bank", 0x1001, "y", 1, &bad}};
    CHECK_ERR(bp_append_batch(s, NULL, items, 2), BP_ECONFLICT, "batch item 1");
    CHECK_EQ(events_of(s), 3);
    uint64_t clock;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:1"));
    CHECK_EQ(clock, 2);
    o.expected_clock = 2;
    CHECK_OK(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &o));
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 4);
    t_rmdir(dir);
}

static void test_idempotency_keys(void) {
    const char *dir = t_dir("bad-idem");
    bp_store *s;
    CHECK(fresh(&s, dir));
    char k256[257];
    memset(k256, 'k', 256);
    k256[256] = '\0';
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = k256;
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &o), BP_EINVAL,
              "idempotency key");
    o.idempotency_key = "";
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &o), BP_EINVAL,
              "idempotency key");
    /* a key used once belongs to its entity */
    o.idempotency_key = "order-1";
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r1, "acct:1", "bank", 0x1001, "x", 1, &o));
    CHECK_EQ(events_of(s), 4);
    CHECK_ERR(bp_append_ex(s, &r2, "acct:2", "bank", 0x1001, "x", 1, &o), BP_ECONFLICT, "order-1");
    CHECK_OK(bp_append_ex(s, &r2, "acct:1", "bank", 0x1001, "x", 1, &o)); /* a replay */
    CHECK(r2.replayed);
    CHECK_EQ(r2.global_seq, r1.global_seq);
    /* within a batch: the same key twice; a key reused on another entity; only
     * some keys already committed */
    bp_append_options ka = BP_APPEND_OPTIONS_INIT, kb = BP_APPEND_OPTIONS_INIT;
    ka.idempotency_key = kb.idempotency_key = "order-2";
    bp_batch_item dup[2] = {{"acct:1", "bank", 0x1001, "x", 1, &ka},
                            {"acct:2", "bank", 0x1001, "x", 1, &kb}};
    CHECK_ERR(bp_append_batch(s, NULL, dup, 2), BP_EINVAL, "order-2");
    kb.idempotency_key = "order-1";
    bp_batch_item moved[2] = {{"acct:1", "bank", 0x1001, "x", 1, &ka},
                              {"acct:2", "bank", 0x1001, "x", 1, &kb}};
    CHECK_ERR(bp_append_batch(s, NULL, moved, 2), BP_ECONFLICT, "order-1");
    bp_batch_item partial[2] = {{"acct:1", "bank", 0x1001, "x", 1, &ka},
                                {"acct:1", "bank", 0x1001, "x", 1, &kb}};
    CHECK_ERR(bp_append_batch(s, NULL, partial, 2), BP_ECONFLICT, "batch");
    /* other bad append options */
    bp_append_options v = BP_APPEND_OPTIONS_INIT;
    v.struct_size = 3;
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &v), BP_EINVAL,
              "struct_size");
    v.struct_size = 0;
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &v), BP_EINVAL,
              "struct_size");
    v.struct_size = sizeof v;
    v.durability.mode = (bp_durability_mode)7;
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &v), BP_EINVAL, "durability");
    CHECK_EQ(events_of(s), 4);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 4);
    /* the key still belongs to acct:1 after a restart */
    CHECK_OK(t_open_try(&s, dir, &OPTS));
    CHECK_ERR(bp_append_ex(s, &r2, "acct:2", "bank", 0x1001, "x", 1, &o), BP_ECONFLICT, "order-1");
    CHECK_EQ(events_of(s), 4);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 4);
    t_rmdir(dir);
}

static void test_bad_batches(void) {
    const char *dir = t_dir("bad-batch");
    bp_store *s;
    CHECK(fresh(&s, dir));
    bp_receipt r[3];
    memset(r, 0xAB, sizeof r);
    r[0].struct_size = sizeof r[0]; /* the stride; the rest is garbage the library overwrites */
    bp_batch_item items[3] = {{"acct:1", "bank", 0x1001, "a", 1, NULL},
                              {"acct:2", "bank", 0x1001, "b", 1, NULL},
                              {"acct:3", "bank", 0x0001, "c", 1, NULL}};
    CHECK_ERR(bp_append_batch(s, r, items, 3), BP_EINVAL, "kind");
    items[2].kind = 0x1001;
    items[1].entity = "batpak:x";
    CHECK_ERR(bp_append_batch(s, r, items, 3), BP_EINVAL, "batch item 1");
    items[1].entity = "acct:2";
    items[0].scope = "";
    CHECK_ERR(bp_append_batch(s, r, items, 3), BP_EINVAL, "batch item 0");
    items[0].scope = "bank";
    CHECK_EQ(events_of(s), 3);
    /* too many items */
    size_t n = (size_t)BP_BATCH_MAX + 1;
    bp_batch_item *many = calloc(n, sizeof *many);
    CHECK(many);
    for (size_t i = 0; i < n; i++)
        many[i] = items[i % 3];
    bp_status rc = bp_append_batch(s, NULL, many, n);
    free(many);
    CHECK_EQ(rc, BP_ETOOBIG);
    CHECK(strstr(bp_last_error(), "65535") != NULL);
    CHECK_EQ(events_of(s), 3);
    /* no items: nothing to write (not documented as an error; see the report) */
    memset(r, 0xAB, sizeof r);
    r[0].struct_size = sizeof r[0];
    CHECK_OK(bp_append_batch(s, r, items, 0));
    CHECK_OK(bp_append_batch(s, r, NULL, 0));
    CHECK_EQ(r[0].global_seq, 0xABABABABABABABABull); /* no receipt written */
    CHECK_EQ(events_of(s), 3);
    /* the good batch goes through */
    CHECK_OK(bp_append_batch(s, r, items, 3));
    CHECK_EQ(r[2].global_seq, 6);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 6);
    t_rmdir(dir);
}

static void test_second_open_locked(void) {
    const char *dir = t_dir("bad-lock");
    bp_store *s;
    CHECK(fresh(&s, dir));
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    bp_store *s2 = (bp_store *)pid;
    CHECK_ERR(t_open_try(&s2, dir, &OPTS), BP_ELOCKED, dir); /* one writer */
    CHECK(strstr(bp_last_error(), pid) != NULL);
    CHECK(s2 == NULL);
    /* any number of readers beside it: they see what it had written */
    bp_store *r1, *r2;
    CHECK_OK(t_open_try(&r1, dir, &OPTS_RO));
    CHECK_OK(t_open_try(&r2, dir, &OPTS_RO));
    CHECK_EQ(events_of(r1), 3);
    CHECK_EQ(events_of(r2), 3);
    CHECK_OK(bp_store_close(r1));
    CHECK_OK(bp_store_close(r2));
    /* the first handle is unaffected */
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", 0x1001, "d", 1));
    CHECK_EQ(events_of(s), 4);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 4);
    t_rmdir(dir);
}

static void test_open_missing(void) {
    const char *base = t_dir("bad-missing");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/nope", base);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.create = false;
    bp_store *s = (bp_store *)dir;
    CHECK_ERR(bp_store_open(&s, dir, &o), BP_ENOTFOUND, dir);
    CHECK(s == NULL);
    o.create = true;
    o.read_only = true;
    CHECK_ERR(bp_store_open(&s, dir, &o), BP_ENOTFOUND, dir);
    CHECK(access(dir, F_OK) != 0); /* nothing was created */
    t_rmdir(base);
}

/* create = false on an existing directory without a store: BP_ENOTFOUND, and
 * the directory is left as it was. */
static void test_open_nocreate_leaves_no_files(void) {
    const char *dir = t_dir("bad-nocreate");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.create = false;
    bp_store *s;
    CHECK_ERR(bp_store_open(&s, dir, &o), BP_ENOTFOUND, dir);
    o.create = true;
    o.read_only = true;
    CHECK_ERR(bp_store_open(&s, dir, &o), BP_ENOTFOUND, dir);
    if (!is_dir_empty_or_missing(dir)) {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "ls -A '%s' >&2", dir);
        fprintf(stderr, "left behind in the directory:\n");
        if (system(cmd) != 0) fprintf(stderr, "ls failed\n");
    }
    CHECK(is_dir_empty_or_missing(dir));
    t_rmdir(dir);
}

static void test_bad_open_options(void) {
    const char *base = t_dir("bad-opts");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/store", base);
    bp_open_options o;
#define BAD_OPT(field_assign, needle)                                                              \
    do {                                                                                           \
        o = (bp_open_options)BP_OPEN_OPTIONS_INIT;                                                 \
        field_assign;                                                                              \
        bp_store *s_ = (bp_store *)&o;                                                             \
        CHECK_ERR(bp_store_open(&s_, dir, &o), BP_EINVAL, needle);                                 \
        CHECK(s_ == NULL);                                                                         \
        CHECK(access(dir, F_OK) != 0);                                                             \
    } while (0)
    BAD_OPT(o.segment_size = 4095, "segment_size");
    BAD_OPT(o.segment_size = 0, "segment_size");
    BAD_OPT(o.segment_size = (1u << 31) + 1, "segment_size");
    BAD_OPT(o.max_payload = BP_MAX_PAYLOAD + 1, "max_payload");
    BAD_OPT(o.max_payload = 0, "max_payload");
    BAD_OPT(o.struct_size = 0, "struct_size");
    BAD_OPT(o.struct_size = sizeof o + 1, "struct_size");
    BAD_OPT(o.durability.mode = BP_DUR_DEFAULT, "durability");
    BAD_OPT(o.durability.mode = (bp_durability_mode)9, "durability");
    BAD_OPT(o.durability = BP_DURABLE_EVERY(0, 0), "BP_DURABLE_EVERY");
    /* on an existing store: refused, the store is untouched */
    bp_store *s;
    CHECK(fresh(&s, dir));
    CHECK_OK(bp_store_close(s));
    o = (bp_open_options)BP_OPEN_OPTIONS_INIT;
    o.segment_size = 100;
    s = (bp_store *)&o;
    CHECK_ERR(bp_store_open(&s, dir, &o), BP_EINVAL, "segment_size");
    CHECK(s == NULL);
    CHECK_EQ(events_after_reopen(dir), 3);
    /* the boundaries are accepted */
    o = (bp_open_options)BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096;
    o.max_payload = BP_MAX_PAYLOAD;
    o.no_open_event = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 3);
#undef BAD_OPT
    t_rmdir(base);
}

static void test_read_only_appends(void) {
    const char *dir = t_dir("bad-ro");
    bp_store *s;
    CHECK(fresh(&s, dir));
    CHECK_OK(bp_store_close(s));
    CHECK_OK(t_open_try(&s, dir, &OPTS_RO));
    CHECK_ERR(bp_append(s, NULL, "acct:1", "bank", 0x1001, "x", 1), BP_EREADONLY, dir);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "ro-1";
    CHECK_ERR(bp_append_ex(s, NULL, "acct:1", "bank", 0x1001, "x", 1, &o), BP_EREADONLY,
              "read-only");
    bp_batch_item items[2] = {{"acct:1", "bank", 0x1001, "x", 1, NULL},
                              {"acct:2", "bank", 0x1001, "y", 1, NULL}};
    CHECK_ERR(bp_append_batch(s, NULL, items, 2), BP_EREADONLY, "read-only");
    CHECK_ERR(bp_append_batch(s, NULL, items, 1), BP_EREADONLY, "read-only");
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.read_only);
    CHECK_EQ(st.events, 3);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 3);
    t_rmdir(dir);
}

static void test_bad_region(void) {
    const char *dir = t_dir("bad-region");
    bp_store *s;
    CHECK(fresh(&s, dir));
    char e256[257];
    memset(e256, 'e', 256);
    e256[256] = '\0';
    uint16_t kinds[2] = {0x1001, 0x1002};
    bp_region r;
    bp_iter *it;
#define BAD_REGION(assign, needle)                                                                 \
    do {                                                                                           \
        r = (bp_region)BP_REGION_INIT;                                                             \
        assign;                                                                                    \
        it = (bp_iter *)&r;                                                                        \
        CHECK_ERR(bp_query(s, &it, &r, BP_READ_FULL), BP_EINVAL, needle);                          \
        CHECK(it == NULL);                                                                         \
    } while (0)
    BAD_REGION(r.struct_size = 0, "struct_size");
    BAD_REGION(r.struct_size = sizeof r + 1, "struct_size");
    BAD_REGION(r.category = 16, "category");
    BAD_REGION(r.category = -2, "category");
    BAD_REGION(r.n_kinds = 2, "kinds");
    BAD_REGION(r.entity = "", "entity");
    BAD_REGION(r.entity = e256, "entity");
    BAD_REGION(r.entity = "\xff\xfe", "entity");
    BAD_REGION(r.scope = "", "scope");
    BAD_REGION(r.scope = "a\xc0\x80", "scope");
    BAD_REGION(r.entity_prefix = e256, "entity_prefix");
#undef BAD_REGION
    r = (bp_region)BP_REGION_INIT;
    it = (bp_iter *)&r;
    CHECK_ERR(bp_query(s, &it, &r, 0x80), BP_EINVAL, "flags");
    CHECK(it == NULL);
    CHECK_ERR(bp_stream(s, &it, "", BP_READ_FULL), BP_EINVAL, "entity");
    CHECK_ERR(bp_by_scope(s, &it, "", BP_READ_FULL), BP_EINVAL, "scope");
    CHECK_ERR(bp_stream(s, &it, "\xff", BP_READ_FULL), BP_EINVAL, "entity");
    /* a good region with kinds works */
    r = (bp_region)BP_REGION_INIT;
    r.kinds = kinds;
    r.n_kinds = 2;
    CHECK_OK(bp_query(s, &it, &r, BP_READ_INDEX_ONLY));
    const bp_event *e;
    int n = 0;
    while (bp_iter_next(it, &e) == BP_OK)
        n++;
    bp_iter_free(it);
    CHECK_EQ(n, 3);
    CHECK_EQ(events_of(s), 3);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 3);
    t_rmdir(dir);
}

static void test_id_parse_malformed(void) {
    const char *bad[] = {
        "",
        "nope",
        "0102030405067708890a0b0c0d0e0f1",        /* 31 digits */
        "0102030405067708890a0b0c0d0e0f1011",     /* 34 digits */
        "01020304-0506-7708-890a-0b0c0d0e0f1",    /* one short */
        "01020304-0506-7708-890a-0b0c0d0e0f100",  /* one long */
        "01020304-0506-7708-890a-0b0c0d0e0f1g",   /* not hex */
        "0102030-40506-7708-890a-0b0c0d0e0f10",   /* dash misplaced */
        "01020304--0506-7708-890a-0b0c0d0e0f10",  /* two dashes */
        " 01020304-0506-7708-890a-0b0c0d0e0f10",  /* leading space */
        "01020304-0506-7708-890a-0b0c0d0e0f10 ",  /* trailing space */
        "{01020304-0506-7708-890a-0b0c0d0e0f10}", /* braces */
        "urn:uuid:01020304-0506-7708-890a-0b0c0d0e0f10",
        "0x0102030405067708890a0b0c0d0e0f10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bp_id id;
        CHECK_ERR(bp_id_parse(&id, bad[i]), BP_EINVAL, "event id");
    }
    bp_id id;
    CHECK_OK(bp_id_parse(&id, "01020304-0506-7708-890A-0B0C0D0E0F10"));
    CHECK_EQ(id.b[15], 0x10);
}

static void test_get_unknown_id(void) {
    const char *dir = t_dir("bad-get");
    bp_store *s;
    CHECK(fresh(&s, dir));
    bp_id id;
    CHECK_OK(bp_id_parse(&id, "01020304-0506-7708-890a-0b0c0d0e0f10"));
    bp_event *ev = (bp_event *)&id;
    CHECK_ERR(bp_get(s, &ev, &id), BP_ENOTFOUND, "01020304-0506-7708-890a-0b0c0d0e0f10");
    CHECK(ev == NULL);
    bp_id zero = {{0}};
    CHECK_ERR(bp_get(s, &ev, &zero), BP_ENOTFOUND, "00000000-0000-0000-0000-000000000000");
    /* an id appended and then cut away by a failed batch is unknown too: the
     * receipt of a good append is found */
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "acct:9", "bank", 0x1001, "z", 1));
    CHECK_OK(bp_get(s, &ev, &r.event_id));
    bp_event_free(ev);
    r.event_id.b[15] ^= 1;
    CHECK_ERR(bp_get(s, &ev, &r.event_id), BP_ENOTFOUND, "not found");
    /* unknown entities are not errors: empty stream, head at clock 0 */
    uint64_t clock = 99;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "acct:unknown"));
    CHECK_EQ(clock, 0);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "acct:unknown", BP_READ_FULL));
    const bp_event *e;
    CHECK_EQ(bp_iter_next(it, &e), BP_DONE);
    bp_iter_free(it);
    CHECK_EQ(events_of(s), 4);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(events_after_reopen(dir), 4);
    t_rmdir(dir);
}

/* Names that become file names (worker checkpoint ids, projection names): one validator. */
static void test_bad_names(void) {
    char max[BP_NAME_MAX + 2];
    memset(max, 'a', sizeof max);
    max[BP_NAME_MAX] = 0;
    CHECK_OK(bp_name_validate("name", max));
    CHECK_OK(bp_name_validate("name", "A-z_0.9"));
    max[BP_NAME_MAX] = 'a';
    max[BP_NAME_MAX + 1] = 0;
    const char *bad[] = {NULL, "", max, "a/b", "a b", "..\\x", "caf\xc3\xa9", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        arm();
        CHECK_FAILS(bp_name_validate("projection name", bad[i]), BP_EINVAL,
                    "projection name must be 1..63 bytes of [A-Za-z0-9._-]");
    }
}

int main(void) {
    RUN(test_bad_names);
    RUN(test_bad_coordinates);
    RUN(test_bad_kinds);
    RUN(test_payload_limit);
    RUN(test_null_arguments);
    RUN(test_cas_conflicts);
    RUN(test_idempotency_keys);
    RUN(test_bad_batches);
    RUN(test_second_open_locked);
    RUN(test_open_missing);
    RUN(test_open_nocreate_leaves_no_files);
    RUN(test_bad_open_options);
    RUN(test_read_only_appends);
    RUN(test_bad_region);
    RUN(test_id_parse_malformed);
    RUN(test_get_unknown_id);
    T_DONE();
}
