/* Round trips through the public API: open, append, get, stream, reopen. */
#include "t.h"

static void test_append_get_stream_reopen(void) {
    const char *dir = t_dir("basic");
    bp_store *s = t_open(dir, NULL);
    CHECK(s);
    bp_receipt r[10];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 10; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "payload-%d", i);
        CHECK_OK(
            bp_append(s, &r[i], i % 2 ? "acct:b" : "acct:a", "bank", 0x1001, payload, (size_t)n));
        CHECK_EQ(r[i].global_seq, i + 1);
        CHECK_EQ(r[i].clock, i / 2 + 1);
        CHECK_EQ(r[i].durability, BP_DUR_SYNC);
    }
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &r[3].event_id));
    CHECK(strcmp(ev->entity, "acct:b") == 0);
    CHECK_EQ(ev->payload_len, 9);
    CHECK(memcmp(ev->payload, "payload-3", 9) == 0);
    CHECK(memcmp(ev->prev_hash.b, r[1].event_hash.b, 32) == 0);
    bp_event_free(ev);
    CHECK_OK(bp_store_close(s));

    s = t_open(dir, NULL);
    CHECK(s);
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "acct:a", BP_READ_FULL));
    const bp_event *e;
    int k = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) == BP_OK) {
        CHECK_EQ(e->clock, k + 1);
        CHECK(memcmp(e->event_hash.b, r[2 * k].event_hash.b, 32) == 0);
        k++;
    }
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(k, 5);
    bp_iter_free(it);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 10);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_append_get_stream_reopen);
    T_DONE();
}
