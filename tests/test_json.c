/* bp_json_to_msgpack (include/batpak/typed.h): JSON text as the MessagePack a payload holds,
 * in its shortest forms, rendered back by bp_event_json; every bad input refused with where
 * and why, nothing handed out. The fuzz target fuzz_payload checks it against a JSON parser
 * on any text. */
#include "t.h"

/* The MessagePack of text, as hex, or "ERR: message". */
static const char *mp_of(const char *text, size_t len) {
    static char out[4096];
    uint8_t *mp = (uint8_t *)"untouched";
    size_t n = 99;
    bp_status rc = bp_json_to_msgpack(&mp, &n, text, len);
    if (rc) {
        snprintf(out, sizeof out, "ERR %d: %s%s", (int)rc, bp_last_error(),
                 mp == NULL && n == 0 ? "" : " (and out set)");
        return out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < sizeof out; i++)
        k += (size_t)snprintf(out + k, sizeof out - k, "%02x", mp[i]);
    out[k] = 0;
    bp_free(mp);
    return out;
}

#define MP(text) mp_of(text, strlen(text))

static void test_shortest_forms(void) {
    CHECK(strcmp(MP("{\"a\":1}"), "81a16101") == 0);
    CHECK(strcmp(MP("  [1, -1, 127, 128, -33, 65536] \n"), "9601ff7fcc80d0dfce00010000") == 0);
    CHECK(strcmp(MP("9223372036854775807"), "cf7fffffffffffffff") == 0);
    CHECK(strcmp(MP("-9223372036854775808"), "d38000000000000000") == 0);
    CHECK(strcmp(MP("1.5"), "cb3ff8000000000000") == 0);
    CHECK(strcmp(MP("[true,false,null]"), "93c3c2c0") == 0);
    CHECK(strcmp(MP("\"\""), "a0") == 0);
    /* keys in the text's order; a NUL inside a string kept */
    CHECK(strcmp(MP("{\"b\":1,\"a\":2}"), "82a16201a16102") == 0);
    CHECK(strcmp(mp_of("\"a\\u0000b\"", 10), "a3610062") == 0);
}

static void test_bad_input_refused(void) {
    const char *r = MP("");
    CHECK(strstr(r, "ERR") && strstr(r, "empty") && !strstr(r, "out set"));
    r = MP(" \n\t ");
    CHECK(strstr(r, "ERR") && strstr(r, "empty"));
    r = MP("{\"a\":1,}");
    CHECK(strstr(r, "ERR") && strstr(r, "line 1 column") && !strstr(r, "out set"));
    r = MP("{\"a\":1}\n{\"b\":2}");
    CHECK(strstr(r, "ERR") && strstr(r, "line 2"));
    r = MP("{\"a\":1,\"a\":2}");
    CHECK(strstr(r, "ERR") && strstr(r, "duplicate"));
    r = MP("18446744073709551616");
    CHECK(strstr(r, "ERR") && strstr(r, "too big"));
    r = MP("NaN");
    CHECK(strstr(r, "ERR"));
    uint8_t *mp;
    size_t n;
    CHECK_EQ(bp_json_to_msgpack(&mp, &n, NULL, 0), BP_EINVAL);
    CHECK_EQ(bp_json_to_msgpack(NULL, &n, "1", 1), BP_EINVAL);
    CHECK_EQ(bp_json_to_msgpack(&mp, NULL, "1", 1), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "NULL") != NULL);
}

/* What it makes, bp_event_json renders back as the same JSON (compact). */
static void test_renders_back(void) {
    const char *texts[] = {"{\"add\":10,\"who\":\"ada\",\"tags\":[\"x\",{\"y\":null}]}",
                           "[1,-2,3.25,true,false,null,\"caf\xc3\xa9\"]",
                           "0",
                           "\"s\"",
                           "{}",
                           "[]"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        uint8_t *mp = NULL;
        size_t n = 0;
        CHECK_OK(bp_json_to_msgpack(&mp, &n, texts[i], strlen(texts[i])));
        bp_event ev;
        memset(&ev, 0, sizeof ev);
        ev.payload = mp;
        ev.payload_len = n;
        char *back = NULL;
        CHECK_OK(bp_event_json(NULL, &back, &ev));
        CHECK(strcmp(back, texts[i]) == 0);
        bp_free(back);
        bp_free(mp);
    }
}

/* Nesting: every text bp_event_json makes reads back as JSON (jansson's parser takes values
 * 2048 deep: 2047 nested arrays around a number), so a payload nested deeper has no JSON
 * form. */
static void test_deepest_nesting(void) {
    for (size_t depth = 2046; depth <= 2048; depth++) {
        uint8_t *mp = malloc(depth + 1);
        CHECK(mp != NULL);
        memset(mp, 0x91, depth); /* an array of one element, depth times */
        mp[depth] = 0x00;
        bp_event ev;
        memset(&ev, 0, sizeof ev);
        ev.payload = mp;
        ev.payload_len = depth + 1;
        char *text = NULL;
        bp_status rc = bp_event_json(NULL, &text, &ev);
        if (depth <= 2047) {
            CHECK_OK(rc);
            CHECK_EQ(strlen(text), 2 * depth + 1);
            uint8_t *again = NULL;
            size_t n = 0;
            CHECK_OK(bp_json_to_msgpack(&again, &n, text, strlen(text))); /* it reads back */
            CHECK(n == depth + 1 && memcmp(again, mp, n) == 0);
            bp_free(again);
            bp_free(text);
        } else {
            CHECK_EQ(rc, BP_EINVAL);
            CHECK(text == NULL);
        }
        free(mp);
    }
}

int main(void) {
    RUN(test_shortest_forms);
    RUN(test_bad_input_refused);
    RUN(test_renders_back);
    RUN(test_deepest_nesting);
    T_DONE();
}
