/* Typed payloads: the X-macro codec for every field type and shape, its
 * errors, the registry, typed append/batch/read, upcaster chains and the JSON
 * lane (batpak/typed.h). */
#include "t.h"
#include "core/core.h"
#include "format/format.h"

#include <jansson.h>
#include <math.h>

/* Every type in every shape it supports. */
#define ALL_FIELDS(F)                                                                              \
    F(ONE, BOOL, b, 0)                                                                             \
    F(ONE, I8, i8, 0)                                                                              \
    F(ONE, I16, i16, 0)                                                                            \
    F(ONE, I32, i32, 0)                                                                            \
    F(ONE, I64, i64, 0)                                                                            \
    F(ONE, U8, u8, 0)                                                                              \
    F(ONE, U16, u16, 0)                                                                            \
    F(ONE, U32, u32, 0)                                                                            \
    F(ONE, U64, u64, 0)                                                                            \
    F(ONE, F32, f32, 0)                                                                            \
    F(ONE, F64, f64, 0)                                                                            \
    F(ONE, STR, s, 40)                                                                             \
    F(ONE, BYTES, by, 16)                                                                          \
    F(OPT, I64, oi, 0)                                                                             \
    F(OPT, STR, os, 8)                                                                             \
    F(OPT, BYTES, ob, 4)                                                                           \
    F(OPT, F32, of, 0)                                                                             \
    F(ARR, I32, ai, 5)                                                                             \
    F(ARR, U64, au, 3)                                                                             \
    F(ARR, F64, af, 2)                                                                             \
    F(ARR, BOOL, ab, 4)                                                                            \
    F(ARR, I8, a8, 40)
BP_TYPE_STATIC(all_t, ALL_FIELDS, "test.all", BP_KIND(1, 0x10), 1);

#define SMALL_FIELDS(F)                                                                            \
    F(ONE, I64, amount, 0)                                                                         \
    F(ONE, STR, memo, 8)                                                                           \
    F(OPT, U32, branch, 0)
BP_TYPE_STATIC(small_t, SMALL_FIELDS, "test.small", BP_KIND(1, 0x11), 1);

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A random value of all_t; extreme values come up often. */
static void random_all(all_t *v) {
    memset(v, 0, sizeof *v);
    static const int64_t edges[] = {0,         1,         -1,    127,       -128,      255,
                                    32767,     -32768,    65535, INT32_MAX, INT32_MIN, UINT32_MAX,
                                    INT64_MAX, INT64_MIN, 31,    -32,       128};
    int64_t e = edges[rnd() % (sizeof edges / sizeof edges[0])];
    bool edge = rnd() & 1;
    v->b = rnd() & 1;
    v->i8 = (int8_t)(edge ? e : (int64_t)rnd());
    v->i16 = (int16_t)(edge ? e : (int64_t)rnd());
    v->i32 = (int32_t)(edge ? e : (int64_t)rnd());
    v->i64 = edge ? e : (int64_t)rnd();
    v->u8 = (uint8_t)(edge ? (uint64_t)e : rnd());
    v->u16 = (uint16_t)(edge ? (uint64_t)e : rnd());
    v->u32 = (uint32_t)(edge ? (uint64_t)e : rnd());
    v->u64 = edge ? (uint64_t)e : rnd();
    v->f32 = (float)((double)(int64_t)rnd() / 1e9);
    v->f64 = (double)(int64_t)rnd() / 3.0;
    size_t sl = rnd() % 41;
    for (size_t i = 0; i < sl; i++)
        v->s[i] = (char)('a' + rnd() % 26);
    if (sl >= 2 && (rnd() & 1)) memcpy(v->s, "\xc3\xa9", 2); /* é */
    v->by_len = (uint32_t)(rnd() % 17);
    for (uint32_t i = 0; i < v->by_len; i++)
        v->by[i] = (uint8_t)rnd();
    v->has_oi = rnd() & 1;
    if (v->has_oi) v->oi = (int64_t)rnd();
    v->has_os = rnd() & 1;
    if (v->has_os) memcpy(v->os, "opt", 4);
    v->has_ob = rnd() & 1;
    if (v->has_ob) v->ob_len = (uint32_t)(rnd() % 5);
    v->has_of = rnd() & 1;
    if (v->has_of) v->of = 0.5f;
    v->ai_count = (uint32_t)(rnd() % 6);
    for (uint32_t i = 0; i < v->ai_count; i++)
        v->ai[i] = (int32_t)rnd();
    v->au_count = (uint32_t)(rnd() % 4);
    for (uint32_t i = 0; i < v->au_count; i++)
        v->au[i] = rnd();
    v->af_count = (uint32_t)(rnd() % 3);
    for (uint32_t i = 0; i < v->af_count; i++)
        v->af[i] = (double)(int64_t)rnd();
    v->ab_count = (uint32_t)(rnd() % 5);
    for (uint32_t i = 0; i < v->ab_count; i++)
        v->ab[i] = rnd() & 1;
    v->a8_count = (uint32_t)(rnd() % 41);
    for (uint32_t i = 0; i < v->a8_count; i++)
        v->a8[i] = (int8_t)rnd();
}

static void test_round_trip_every_type(void) {
    size_t max = bp_type_encoded_max(&all_t_type);
    CHECK(max > 0);
    uint8_t *buf = malloc(max), *again = malloc(max);
    CHECK(buf && again);
    for (int i = 0; i < 2000; i++) {
        all_t v, out;
        random_all(&v);
        size_t len, len2;
        CHECK_OK(bp_type_encode(&all_t_type, buf, max, &len, &v));
        CHECK(len <= max);
        memset(&out, 0xAA, sizeof out);
        CHECK_OK(bp_type_decode(&all_t_type, &out, buf, len));
        CHECK(memcmp(&v, &out, sizeof v) == 0);
        CHECK_OK(bp_type_encode(&all_t_type, again, max, &len2, &out));
        CHECK_EQ(len2, len);
        CHECK(memcmp(buf, again, len) == 0);
    }
    /* every bound at its largest still fits in bp_type_encoded_max */
    all_t big;
    memset(&big, 0, sizeof big);
    memset(big.s, 'x', 40);
    big.by_len = 16;
    big.has_oi = big.has_os = big.has_ob = big.has_of = true;
    big.oi = INT64_MIN;
    memset(big.os, 'y', 8);
    big.ob_len = 4;
    big.ai_count = 5;
    big.au_count = 3;
    big.au[0] = UINT64_MAX;
    big.af_count = 2;
    big.ab_count = 4;
    big.a8_count = 40;
    big.u64 = UINT64_MAX;
    big.i64 = INT64_MIN;
    size_t len;
    CHECK_OK(bp_type_encode(&all_t_type, buf, max, &len, &big));
    all_t out;
    CHECK_OK(bp_type_decode(&all_t_type, &out, buf, len));
    CHECK(memcmp(&big, &out, sizeof big) == 0);
    /* every proper prefix of a valid encoding is refused, never over-read */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        CHECK(p);
        memcpy(p, buf, cut);
        bp_status rc = bp_type_decode(&all_t_type, &out, p, cut);
        free(p);
        CHECK_EQ(rc, BP_EINVAL);
    }
    free(buf);
    free(again);
}

/* A buffer of MessagePack built by hand. */
typedef struct mb {
    uint8_t b[512];
    size_t n;
} mb;
static void mb_put(mb *m, const char *bytes, size_t n) {
    memcpy(m->b + m->n, bytes, n);
    m->n += n;
}
#define PUT(m, lit) mb_put((m), (lit), sizeof(lit) - 1)

static void test_decoder_accepts_any_valid_encoding(void) {
    mb m = {.n = 0};
    /* keys out of order, wide integer encodings, nil for an optional field */
    PUT(&m, "\x83");
    PUT(&m, "\xa6"
            "branch"
            "\xc0");
    PUT(&m, "\xa4"
            "memo"
            "\xd9\x02"
            "hi");
    PUT(&m, "\xa6"
            "amount"
            "\xd3\xff\xff\xff\xff\xff\xff\xff\xfe");
    small_t v;
    CHECK_OK(bp_type_decode(&small_t_type, &v, m.b, m.n));
    CHECK_EQ(v.amount, -2);
    CHECK(strcmp(v.memo, "hi") == 0);
    CHECK(!v.has_branch);
    /* a uint 64 encoding of a small number, and the optional present */
    m.n = 0;
    PUT(&m, "\x83\xa6"
            "amount"
            "\xcf\x00\x00\x00\x00\x00\x00\x00\x07");
    PUT(&m, "\xa4"
            "memo"
            "\xa0");
    PUT(&m, "\xa6"
            "branch"
            "\xcd\x01\x00");
    CHECK_OK(bp_type_decode(&small_t_type, &v, m.b, m.n));
    CHECK_EQ(v.amount, 7);
    CHECK(v.has_branch && v.branch == 256);
    CHECK_EQ(v.memo[0], 0);
}

static void test_decoder_errors(void) {
    small_t v;
    mb m = {.n = 0};
    PUT(&m, "\x92\x01\x02");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "expected a map");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, "", 0), BP_EINVAL, "test.small");
    m.n = 0;
    PUT(&m, "\x83\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa0\xa5"
            "bogus"
            "\x01");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "unknown field 'bogus'");
    m.n = 0;
    PUT(&m, "\x83\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa0\xa6"
            "amount"
            "\x02");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "field 'amount'");
    CHECK(strstr(bp_last_error(), "twice"));
    m.n = 0;
    PUT(&m, "\x81\xa6"
            "amount"
            "\x01");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "field 'memo'");
    CHECK(strstr(bp_last_error(), "missing"));
    m.n = 0;
    PUT(&m, "\x82\xa6"
            "amount"
            "\xa1"
            "x"
            "\xa4"
            "memo"
            "\xa0");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL,
                "field 'amount' at offset 8");
    CHECK(strstr(bp_last_error(), "expected int64"));
    m.n = 0;
    PUT(&m, "\x82\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa9"
            "123456789");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "at most 8 bytes");
    m.n = 0;
    PUT(&m, "\x82\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa2\xc3\x28");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "UTF-8");
    m.n = 0; /* found by fuzz_typed: a NUL inside a string would not survive a round trip */
    PUT(&m, "\x82\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa3"
            "a\0b");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "NUL");
    m.n = 0;
    PUT(&m, "\x83\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa0\xa6"
            "branch"
            "\xff");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "expected uint32");
    m.n = 0;
    PUT(&m, "\x82\xa6"
            "amount"
            "\x01\xa4"
            "memo"
            "\xa0\x00");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "trailing bytes");
    m.n = 0;
    PUT(&m, "\x82\x01\x01\xa4"
            "memo"
            "\xa0");
    CHECK_FAILS(bp_type_decode(&small_t_type, &v, m.b, m.n), BP_EINVAL, "field name");
    /* ranges of every integer width, and array bounds */
    all_t a, out;
    random_all(&a);
    uint8_t buf[2048];
    size_t len;
    CHECK_OK(bp_type_encode(&all_t_type, buf, sizeof buf, &len, &a));
    /* find "i8" and overwrite its value with 200 (uint 8): out of int8 range */
    uint8_t *k = memmem(buf, len, "\xa2i8", 3);
    CHECK(k);
    uint8_t patched[2100];
    size_t at = (size_t)(k - buf) + 3, vlen = 1;
    if (buf[at] == 0xd0) vlen = 2;
    memcpy(patched, buf, at);
    patched[at] = 0xcc;
    patched[at + 1] = 200;
    memcpy(patched + at + 2, buf + at + vlen, len - at - vlen);
    CHECK_FAILS(bp_type_decode(&all_t_type, &out, patched, len + 2 - vlen), BP_EINVAL,
                "field 'i8'");
    CHECK(strstr(bp_last_error(), "expected int8"));
}

static void test_encoder_errors(void) {
    small_t v;
    memset(&v, 0, sizeof v);
    memset(v.memo, 'x', sizeof v.memo); /* no NUL within 8 + 1 bytes */
    uint8_t buf[128];
    size_t len;
    CHECK_FAILS(bp_type_encode(&small_t_type, buf, sizeof buf, &len, &v), BP_EINVAL,
                "field 'memo'");
    memcpy(v.memo, "\xc3\x28", 3);
    CHECK_FAILS(bp_type_encode(&small_t_type, buf, sizeof buf, &len, &v), BP_EINVAL, "UTF-8");
    memcpy(v.memo, "ok", 3);
    v.amount = 1000;
    CHECK_FAILS(bp_type_encode(&small_t_type, buf, 5, &len, &v), BP_ETOOBIG, "needs");
    size_t need = len;
    CHECK_OK(bp_type_encode(&small_t_type, buf, need, &len, &v));
    CHECK_EQ(len, need);
    all_t a;
    memset(&a, 0, sizeof a);
    a.by_len = 17;
    CHECK_FAILS(bp_type_encode(&all_t_type, buf, sizeof buf, &len, &a), BP_EINVAL, "by_len 17");
    a.by_len = 0;
    a.ai_count = 6;
    CHECK_FAILS(bp_type_encode(&all_t_type, buf, sizeof buf, &len, &a), BP_EINVAL, "ai_count 6");
}

/* Hand-built descriptors that bp_type_check refuses. */
typedef struct raw2 {
    int64_t a;
    char s[5];
} raw2;
static bp_field raw2_fields[2];
static const bp_field *raw2_fn(void) {
    return raw2_fields;
}

static void test_descriptor_checks(void) {
    bp_type t = {sizeof(bp_type), "test.raw", BP_KIND(1, 0x20), 1, sizeof(raw2), 2, raw2_fn};
    raw2_fields[0] = (bp_field){"a", BP_FT_I64, BP_FS_ONE, 0, offsetof(raw2, a), 0, 0};
    raw2_fields[1] = (bp_field){"s", BP_FT_STR, BP_FS_ONE, 4, offsetof(raw2, s), 0, 0};
    CHECK_OK(bp_type_check(&t));
    t.kind = BP_KIND_SYSTEM_DENIAL;
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "not an application kind");
    t.kind = BP_KIND(0xD, 1);
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "not an application kind");
    t.kind = BP_KIND(1, 0x20);
    t.version = 0;
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "schema version");
    t.version = 1;
    t.name = "";
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "name");
    t.name = "test.raw";
    raw2_fields[1].name = "a";
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "declared twice");
    raw2_fields[1].name = "s";
    raw2_fields[1].n = 8; /* 8 + 1 bytes run past the end of the 16-byte struct */
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "outside");
    raw2_fields[1].n = 0;
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "bound 0");
    raw2_fields[1].n = 4;
    raw2_fields[1].shape = BP_FS_ARR;
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "arrays of string");
    raw2_fields[1].shape = 9;
    CHECK_FAILS(bp_type_check(&t), BP_EINVAL, "unknown type or shape");
    raw2_fields[1].shape = BP_FS_ONE;
    CHECK_EQ(bp_type_encoded_max(NULL), 0);
    CHECK_FAILS(bp_type_check(NULL), BP_EINVAL, "NULL");
}

static void test_json_forms(void) {
    small_t v = {.amount = -5, .memo = "caf\xc3\xa9", .has_branch = true, .branch = 7};
    char *j;
    CHECK_OK(bp_type_to_json(&small_t_type, &j, &v));
    CHECK(strcmp(j, "{\"amount\":-5,\"memo\":\"caf\xc3\xa9\",\"branch\":7}") == 0);
    bp_free(j);
    v.has_branch = false;
    CHECK_OK(bp_type_to_json(&small_t_type, &j, &v));
    CHECK(strcmp(j, "{\"amount\":-5,\"memo\":\"caf\xc3\xa9\"}") == 0);
    bp_free(j);
    all_t a;
    memset(&a, 0, sizeof a);
    a.u64 = UINT64_MAX;
    a.f64 = NAN;
    a.f32 = -INFINITY;
    a.by_len = 2;
    a.by[0] = 0xde;
    a.by[1] = 0xad;
    a.ai_count = 2;
    a.ai[0] = -1;
    a.ai[1] = 2;
    CHECK_OK(bp_type_to_json(&all_t_type, &j, &a));
    CHECK(strstr(j, "\"u64\":\"18446744073709551615\""));
    CHECK(strstr(j, "\"f64\":\"NaN\""));
    CHECK(strstr(j, "\"f32\":\"-Infinity\""));
    CHECK(strstr(j, "\"by\":\"dead\""));
    CHECK(strstr(j, "\"ai\":[-1,2]"));
    CHECK(strstr(j, "\"oi\"") == NULL);
    bp_free(j);
}

static uint64_t count_events(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    return bp_store_stats_get(s, &st) ? UINT64_MAX : st.events;
}

#define OTHER_FIELDS(F) F(ONE, I64, amount, 0)
BP_TYPE_STATIC(other_same_kind, OTHER_FIELDS, "test.other", BP_KIND(1, 0x11), 1);
BP_TYPE_STATIC(other_same_name, OTHER_FIELDS, "test.small", BP_KIND(1, 0x12), 1);

static void test_registry(void) {
    const char *dir = t_dir("typed-registry");
    bp_store *s = t_open(dir, NULL);
    CHECK(bp_registered_type(s, small_t_type.kind) == NULL);
    CHECK_OK(bp_register_type(s, &small_t_type));
    CHECK(bp_registered_type(s, small_t_type.kind) == &small_t_type);
    CHECK_FAILS(bp_register_type(s, &small_t_type), BP_EEXIST, "already registered");
    CHECK_FAILS(bp_register_type(s, &other_same_kind_type), BP_EEXIST, "kind 0x1011");
    CHECK_FAILS(bp_register_type(s, &other_same_name_type), BP_EEXIST, "name");
    CHECK(bp_registered_type(s, other_same_name_type.kind) == NULL);
    CHECK_OK(bp_register_type(s, &all_t_type));
    CHECK_FAILS(bp_register_type(s, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_typed_append_and_read(void) {
    const char *dir = t_dir("typed-rw");
    bp_store *s = t_open(dir, NULL);
    all_t vals[20];
    for (int i = 0; i < 20; i++) {
        random_all(&vals[i]);
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_append_typed(s, &r, "thing:1", "test", &all_t_type, &vals[i], NULL));
        CHECK_EQ(r.kind, all_t_type.kind);
    }
    /* a typed batch: all or nothing */
    small_t a = {.amount = 1, .memo = "a"}, b = {.amount = 2, .memo = "b"};
    small_t bad = {.amount = 3};
    memset(bad.memo, 'z', sizeof bad.memo);
    bp_typed_item items[3] = {{"acct:1", "bank", &small_t_type, &a, NULL},
                              {"acct:2", "bank", &small_t_type, &b, NULL},
                              {"acct:3", "bank", &small_t_type, &bad, NULL}};
    CHECK_FAILS(bp_append_batch_typed(s, NULL, items, 3), BP_EINVAL, "batch item 2");
    CHECK_EQ(count_events(s), 20);
    bp_receipt rs[2];
    t_receipts(rs, sizeof rs / sizeof rs[0]);
    CHECK_OK(bp_append_batch_typed(s, rs, items, 2));
    CHECK_EQ(rs[1].global_seq, 22);
    /* options pass through; options of another size are refused */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 0;
    CHECK_FAILS(bp_append_typed(s, NULL, "acct:1", "bank", &small_t_type, &a, &o), BP_ECONFLICT,
                "");
    o.expected_clock = 1;
    o.struct_size = 1;
    CHECK_FAILS(bp_append_typed(s, NULL, "acct:1", "bank", &small_t_type, &a, &o), BP_EINVAL,
                "bp_append_options.struct_size is 1");
    o.struct_size = sizeof o;
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &small_t_type, &a, &o));
    CHECK_OK(bp_store_close(s));

    s = t_open(dir, NULL);
    bp_iter *it;
    CHECK_OK(bp_by_fact_typed(s, &it, &all_t_type));
    const bp_event *ev;
    all_t got;
    int n = 0;
    bp_status rc;
    while ((rc = bp_iter_next_typed(it, &ev, &got, &all_t_type)) == BP_OK) {
        CHECK(n < 20);
        CHECK(memcmp(&got, &vals[n], sizeof got) == 0);
        CHECK_EQ(BP_EVENT_SCHEMA_VERSION(ev->flags), 1);
        n++;
    }
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(n, 20);
    bp_iter_free(it);
    /* wrong kind, no payload, malformed payload */
    CHECK_OK(bp_stream(s, &it, "acct:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_FAILS(bp_event_decode(s, &got, ev, &all_t_type), BP_EINVAL, "kind 0x1011, not 0x1010");
    small_t sv;
    CHECK_OK(bp_event_decode(s, &sv, ev, &small_t_type));
    CHECK_EQ(sv.amount, 1);
    bp_iter_free(it);
    CHECK_OK(bp_stream(s, &it, "acct:1", BP_READ_INDEX_ONLY));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_FAILS(bp_event_decode(s, &sv, ev, &small_t_type), BP_EINVAL, "without its payload");
    bp_iter_free(it);
    CHECK_OK(bp_append(s, NULL, "acct:9", "bank", small_t_type.kind, "\x81\xa1x\x01", 4));
    CHECK_OK(bp_stream(s, &it, "acct:9", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_FAILS(bp_event_decode(s, &sv, ev, &small_t_type), BP_EINVAL, "acct:9");
    CHECK(strstr(bp_last_error(), "unknown field 'x'"));
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Three schema versions of one kind. */
#define DEP1(F) F(ONE, I32, amount, 0)
BP_TYPE_STATIC(dep_v1, DEP1, "test.deposit", BP_KIND(1, 0x30), 1);
#define DEP2(F)                                                                                    \
    F(ONE, I64, amount, 0)                                                                         \
    F(ONE, STR, currency, 3)
BP_TYPE_STATIC(dep_v2, DEP2, "test.deposit", BP_KIND(1, 0x30), 2);
#define DEP3(F)                                                                                    \
    F(ONE, I64, cents, 0)                                                                          \
    F(ONE, STR, currency, 3)
BP_TYPE_STATIC(dep_v3, DEP3, "test.deposit", BP_KIND(1, 0x30), 3);
BP_TYPE_STATIC(dep_v4, DEP3, "test.deposit", BP_KIND(1, 0x30), 4);

static int up_calls;
static bp_status up12(void *ctx, const void *from, void *to) {
    (void)ctx;
    const dep_v1 *a = from;
    dep_v2 *b = to;
    up_calls++;
    b->amount = a->amount;
    memcpy(b->currency, "EUR", 4);
    return BP_OK;
}
static bp_status up23(void *ctx, const void *from, void *to) {
    const dep_v2 *a = from;
    dep_v3 *b = to;
    if (a->amount < 0) return BP_EINVAL; /* the test's way to make a step fail */
    b->cents = a->amount * *(int *)ctx;
    memcpy(b->currency, a->currency, sizeof b->currency);
    return BP_OK;
}

static void test_upcaster_chains(void) {
    const char *dir = t_dir("typed-upcast");
    bp_store *s = t_open(dir, NULL);
    dep_v1 a = {.amount = 5};
    dep_v2 b = {.amount = 7, .currency = "USD"};
    dep_v3 c = {.cents = 900, .currency = "GBP"};
    dep_v4 d = {.cents = 1, .currency = "JPY"};
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &dep_v1_type, &a, NULL));
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &dep_v2_type, &b, NULL));
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &dep_v3_type, &c, NULL));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", dep_v3_type.kind,
                       "\x82\xa5"
                       "cents"
                       "\x03\xa8"
                       "currency"
                       "\xa3"
                       "CHF",
                       21)); /* v0 */
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &dep_v4_type, &d, NULL));
    int factor = 100;
    /* registration errors */
    CHECK_FAILS(bp_register_upcaster(s, &dep_v1_type, &dep_v2_type, up12, NULL), BP_EINVAL,
                "no registered type");
    CHECK_OK(bp_register_type(s, &dep_v3_type));
    CHECK_FAILS(bp_register_upcaster(s, &dep_v1_type, &dep_v3_type, up12, NULL), BP_EINVAL,
                "not consecutive");
    CHECK_FAILS(bp_register_upcaster(s, &small_t_type, &dep_v2_type, up12, NULL), BP_EINVAL,
                "kinds differ");
    CHECK_FAILS(bp_register_upcaster(s, &dep_v3_type, &dep_v4_type, up12, NULL), BP_EINVAL,
                "the registered 'test.deposit' is v3");
    CHECK_FAILS(bp_register_upcaster(s, &dep_v2_type, &dep_v3_type, NULL, NULL), BP_EINVAL, "NULL");
    CHECK_OK(bp_register_upcaster(s, &dep_v2_type, &dep_v3_type, up23, &factor));
    CHECK_FAILS(bp_register_upcaster(s, &dep_v2_type, &dep_v3_type, up23, &factor), BP_EEXIST,
                "already registered");

    bp_iter *it;
    const bp_event *ev;
    dep_v3 got;
    CHECK_OK(bp_stream(s, &it, "acct:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev)); /* v1: the 1 -> 2 step is missing */
    CHECK_FAILS(bp_event_decode(s, &got, ev, &dep_v3_type), BP_EINVAL, "no upcaster from v1");
    CHECK_OK(bp_register_upcaster(s, &dep_v1_type, &dep_v2_type, up12, NULL));
    CHECK_OK(bp_event_decode(s, &got, ev, &dep_v3_type));
    CHECK_EQ(got.cents, 500);
    CHECK(strcmp(got.currency, "EUR") == 0);
    CHECK_EQ(up_calls, 1);
    dep_v1 raw1; /* reading at the event's own version needs no upcaster */
    CHECK_OK(bp_event_decode(s, &raw1, ev, &dep_v1_type));
    CHECK_EQ(raw1.amount, 5);
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_OK(bp_event_decode(s, &got, ev, &dep_v3_type));
    CHECK_EQ(got.cents, 700);
    CHECK(strcmp(got.currency, "USD") == 0);
    CHECK_FAILS(bp_event_decode(s, &raw1, ev, &dep_v1_type), BP_EINVAL, "newer than the reader");
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_OK(bp_event_decode(s, &got, ev, &dep_v3_type));
    CHECK_EQ(got.cents, 900);
    CHECK_OK(bp_iter_next(it, &ev)); /* schema version not stated: read as current */
    CHECK_EQ(BP_EVENT_SCHEMA_VERSION(ev->flags), 0);
    CHECK_OK(bp_event_decode(s, &got, ev, &dep_v3_type));
    CHECK(strcmp(got.currency, "CHF") == 0);
    CHECK_OK(bp_iter_next(it, &ev)); /* written by a newer program */
    CHECK_FAILS(bp_event_decode(s, &got, ev, &dep_v3_type), BP_EINVAL, "v4, newer");
    bp_iter_free(it);
    /* JSON renders the current form */
    CHECK_OK(bp_stream(s, &it, "acct:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    char *j;
    CHECK_OK(bp_event_json(s, &j, ev));
    CHECK(strcmp(j, "{\"cents\":500,\"currency\":\"EUR\"}") == 0);
    bp_free(j);
    bp_iter_free(it);
    /* a failing step fails the read */
    dep_v2 neg = {.amount = -1, .currency = "USD"};
    CHECK_OK(bp_append_typed(s, NULL, "acct:2", "bank", &dep_v2_type, &neg, NULL));
    CHECK_OK(bp_stream(s, &it, "acct:2", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_FAILS(bp_event_decode(s, &got, ev, &dep_v3_type), BP_EINVAL, "acct:2");
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_json_lane(void) {
    const char *dir = t_dir("typed-json");
    bp_store *s = t_open(dir, NULL);
    small_t v = {.amount = 42, .memo = "hi"};
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &small_t_type, &v, NULL));
    CHECK_OK(
        bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 0x40), "\x81\xa1k\x93\x01\xc3\xc0", 7));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 0x40), "\xc4\x01\x00", 3));
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 0x40), NULL, 0));
    bp_iter *it;
    const bp_event *ev;
    char *j;
    CHECK_OK(bp_stream(s, &it, "acct:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_OK(bp_event_json(s, &j, ev)); /* not registered: the generic form */
    CHECK(strcmp(j, "{\"amount\":42,\"memo\":\"hi\"}") == 0);
    bp_free(j);
    CHECK_OK(bp_register_type(s, &small_t_type));
    CHECK_OK(bp_event_json(s, &j, ev));
    CHECK(strcmp(j, "{\"amount\":42,\"memo\":\"hi\"}") == 0);
    bp_free(j);
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_OK(bp_event_json(s, &j, ev));
    json_t *jv = json_loads(j, 0, NULL);
    bp_free(j);
    CHECK(jv);
    CHECK(json_is_array(json_object_get(jv, "k")));
    CHECK_EQ(json_array_size(json_object_get(jv, "k")), 3);
    json_decref(jv);
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_FAILS(bp_event_json(s, &j, ev), BP_EINVAL, "JSON form");
    CHECK(j == NULL);
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK_OK(bp_event_json(s, &j, ev));
    CHECK(strcmp(j, "null") == 0);
    bp_free(j);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* The vectors of doc/FORMAT.md "Typed payloads" and "Projection snapshots". */
#define VEC_FIELDS(F)                                                                              \
    F(ONE, I64, amount, 0)                                                                         \
    F(OPT, STR, memo, 8)                                                                           \
    F(ARR, I16, tags, 3)
BP_TYPE_STATIC(vec_t, VEC_FIELDS, "test.vector", BP_KIND(1, 0x50), 1);

static bool hex_eq(const uint8_t *p, size_t n, const char *hex) {
    char buf[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < sizeof buf; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, i ? " %02x" : "%02x", p[i]);
    if (strcmp(buf, hex) != 0) {
        fprintf(stderr, "got  %s\nwant %s\n", buf, hex);
        return false;
    }
    return true;
}

static void test_format_vectors(void) {
    vec_t v = {.amount = -200, .has_memo = true, .memo = "hi", .tags_count = 2, .tags = {1, 300}};
    uint8_t buf[64];
    size_t len;
    CHECK_OK(bp_type_encode(&vec_t_type, buf, sizeof buf, &len, &v));
    CHECK(hex_eq(buf, len,
                 "83 a6 61 6d 6f 75 6e 74 d1 ff 38 a4 6d 65 6d 6f a2 68 69 a4 74 61 "
                 "67 73 92 01 cd 01 2c"));
    char *j;
    CHECK_OK(bp_type_to_json(&vec_t_type, &j, &v));
    CHECK(strcmp(j, "{\"amount\":-200,\"memo\":\"hi\",\"tags\":[1,300]}") == 0);
    bp_free(j);
    const uint8_t state[4] = {1, 2, 3, 4};
    bp_projsnap sn = {"account", 7, 1, "acct:1", 6, 3, {{0}}, state, 4};
    memset(sn.head.b, 9, 32);
    bp_buf b = {0};
    CHECK_EQ(bp_projsnap_encode(&b, &sn), 0);
    CHECK(hex_eq(b.data, b.len,
                 "42 50 50 4a 00 00 00 01 00 07 61 63 63 6f 75 6e 74 00 00 00 01 00 06 61 63 63 "
                 "74 3a 31 00 00 00 00 00 00 00 03 09 09 09 09 09 09 09 09 09 09 09 09 09 09 09 "
                 "09 09 09 09 09 09 09 09 09 09 09 09 09 09 09 09 09 00 00 00 00 00 00 00 04 01 "
                 "02 03 04 a6 c7 d4 ba"));
    bp_projsnap back;
    CHECK_OK(bp_projsnap_decode(b.data, b.len, &back));
    CHECK_EQ(back.clock, 3);
    CHECK(back.state_size == 4 && memcmp(back.state, state, 4) == 0);
    b.data[20] ^= 1; /* any changed byte fails the CRC */
    CHECK_EQ(bp_projsnap_decode(b.data, b.len, &back), BP_ECORRUPT);
    b.data[20] ^= 1;
    CHECK_EQ(bp_projsnap_decode(b.data, b.len - 1, &back), BP_ECORRUPT);
    bp_buf_free(&b);
}

/* The UTF-8 check skips ASCII 8 bytes at a time: a bad byte at any position of any length. */
static void test_utf8_every_position(void) {
    unsigned char b[48];
    for (size_t len = 1; len <= 40; len++) {
        memset(b, 'a', len);
        CHECK(bp_utf8_valid(b, len));
        for (size_t pos = 0; pos < len; pos++) {
            memset(b, 'a', len);
            b[pos] = 0x80; /* a continuation byte on its own */
            CHECK(!bp_utf8_valid(b, len));
            b[pos] = 0xff;
            CHECK(!bp_utf8_valid(b, len));
            if (pos + 1 < len) {
                b[pos] = 0xc3; /* é */
                b[pos + 1] = 0xa9;
                CHECK(bp_utf8_valid(b, len));
                b[pos + 1] = 'a'; /* truncated sequence */
                CHECK(!bp_utf8_valid(b, len));
            }
        }
    }
}

static bp_status react_none(void *ctx, const bp_delivery *d, const void *value, bp_reactions *out) {
    (void)d;
    (void)out;
    if (value) __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
    return BP_OK;
}

/* A typed reactor meeting a payload that does not decode as its type skips it under
 * BP_POISON_SKIP (no on_poison) and says so: counted in its stats with the seq and the
 * decode error, and in the store's Prometheus text. */
static void test_reactor_poison_skip_counted(void) {
    const char *dir = t_dir("typed-poisonskip");
    bp_store *s = t_open(dir, NULL);
    small_t v = {.amount = 7};
    snprintf(v.memo, sizeof v.memo, "ok");
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &small_t_type, &v, NULL));
    bp_receipt bad = BP_RECEIPT_INIT; /* the type's kind, bytes that are not its MessagePack */
    CHECK_OK(bp_append(s, &bad, "acct:1", "bank", small_t_type.kind, "\xc1garbage", 8));
    bp_receipt last = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_typed(s, &last, "acct:1", "bank", &small_t_type, &v, NULL));
    int decoded = 0;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.poison = BP_POISON_SKIP;
    cfg.max_attempts = 2;
    cfg.backoff_ms = 1;
    bp_region r = BP_REGION_INIT;
    bp_worker *w;
    CHECK_OK(bp_reactor(s, &w, &r, &small_t_type, react_none, &decoded, &cfg));
    CHECK_OK(bp_worker_wait(w, last.global_seq, 60000));
    bp_worker_stats st = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &st);
    CHECK_EQ(st.skipped, 1);
    CHECK_EQ(st.poisoned, 1);
    CHECK_EQ(st.last_skipped_seq, bad.global_seq);
    CHECK(strstr(st.last_skipped_error, "test.small") || strstr(st.last_skipped_error, "decode"));
    fprintf(stderr, "  skipped: %s\n", st.last_skipped_error);
    CHECK_EQ(st.handled, 3); /* the skipped one counts: the position moved past it */
    CHECK_EQ(decoded, 2);
    char *text = NULL;
    CHECK_OK(bp_store_prometheus(s, &text));
    CHECK(strstr(text, "\nbatpak_worker_poison_skipped_total 1\n"));
    bp_free(text);
    CHECK_OK(bp_worker_stop(w));
    bp_delivery_stats ds = BP_DELIVERY_STATS_INIT; /* the store's count outlives the worker */
    CHECK_OK(bp_delivery_stats_get(s, &ds));
    CHECK_EQ(ds.poison_skipped, 1);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_round_trip_every_type);
    RUN(test_decoder_accepts_any_valid_encoding);
    RUN(test_decoder_errors);
    RUN(test_encoder_errors);
    RUN(test_descriptor_checks);
    RUN(test_json_forms);
    RUN(test_registry);
    RUN(test_typed_append_and_read);
    RUN(test_upcaster_chains);
    RUN(test_json_lane);
    RUN(test_format_vectors);
    RUN(test_utf8_every_position);
    RUN(test_reactor_poison_skip_counted);
    T_DONE();
}
