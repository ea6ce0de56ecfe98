/*
 * batch: a money transfer touches three entities -- debit one account, credit another,
 * record the transfer -- and must happen entirely or not at all. bp_append_batch writes any
 * entities as one atomic unit, synced before any of it becomes visible.
 *
 * What to look at:
 *   - CAS expectations inside a batch see the earlier items of the same batch (alice is
 *     opened and credited in one batch: expected clocks 0, then 1)
 *   - a transfer whose expectation on bob is stale (someone deposited meanwhile) fails with
 *     BP_ECONFLICT, and nothing of it is written, not even the items that were fine
 *   - events read back carry their batch: batch_id (the first seq), batch_index, batch_count
 *
 *   usage: batch DIR      (re-runnable: each run opens new accounts)
 */
#include <batpak/batpak.h>

#include <stdio.h>

#define KIND_OPENED BP_KIND(6, 1)
#define KIND_CREDIT BP_KIND(6, 2)
#define KIND_DEBIT BP_KIND(6, 3)
#define KIND_TRANSFER BP_KIND(6, 4)

/* {"cents": n} in MessagePack: fixmap(1), fixstr(5), int64 big-endian */
static const uint8_t *cents(uint8_t out[16], int64_t n) {
    const uint8_t head[] = {0x81, 0xa5, 'c', 'e', 'n', 't', 's', 0xd3};
    for (int i = 0; i < 8; i++)
        out[i] = head[i];
    for (int i = 15; i >= 8; i--, n >>= 8)
        out[i] = (uint8_t)(n & 0xff);
    return out;
}

static bp_append_options expect(uint64_t clock) {
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = clock;
    return o;
}

static int fail(const char *what) {
    fprintf(stderr, "batch: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "batch: %s\n", what);
    return 1;
}

/* One transfer as one batch, with CAS on both accounts at the given head clocks. */
static bp_status transfer(bp_store *s, const char *from, uint64_t from_clock, const char *to,
                          uint64_t to_clock, const char *record, int64_t amount, bp_receipt r[3]) {
    uint8_t p1[16], p2[16], p3[16];
    bp_append_options o1 = expect(from_clock), o2 = expect(to_clock);
    bp_batch_item items[] = {
        {from, "bank", KIND_DEBIT, cents(p1, amount), 16, &o1},
        {to, "bank", KIND_CREDIT, cents(p2, amount), 16, &o2},
        {record, "bank", KIND_TRANSFER, cents(p3, amount), 16, NULL},
    };
    return bp_append_batch(s, r, items, 3);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./batch-data";
    bp_store *s;
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_open(&s, dir, NULL) || bp_store_stats_get(s, &st)) return fail("open");
    char alice[48], bob[48], t1[48], t2[48];
    unsigned long long run = (unsigned long long)st.events; /* new names each run */
    snprintf(alice, sizeof alice, "acct:%llu:alice", run);
    snprintf(bob, sizeof bob, "acct:%llu:bob", run);
    snprintf(t1, sizeof t1, "transfer:%llu:1", run);
    snprintf(t2, sizeof t2, "transfer:%llu:2", run);

    /* 1. open two accounts and fund one, in one batch */
    uint8_t p[16];
    bp_append_options new_acct = expect(0), funded = expect(1), new_bob = expect(0);
    bp_batch_item open_items[] = {
        {alice, "bank", KIND_OPENED, NULL, 0, &new_acct},
        {alice, "bank", KIND_CREDIT, cents(p, 10000), 16, &funded}, /* sees the item above */
        {bob, "bank", KIND_OPENED, NULL, 0, &new_bob},
    };
    bp_receipt r[3] = {BP_RECEIPT_INIT};
    if (bp_append_batch(s, r, open_items, 3)) return fail("open accounts");
    printf("batch 1   alice opened and funded, bob opened: seq %llu..%llu, alice at clock %llu\n",
           (unsigned long long)r[0].global_seq, (unsigned long long)r[2].global_seq,
           (unsigned long long)r[1].clock);
    if (r[1].clock != 2 || r[2].global_seq != r[0].global_seq + 2) return wrong("batch 1 order");

    /* 2. a transfer: debit, credit, record -- all visible together */
    if (transfer(s, alice, 2, bob, 1, t1, 3000, r)) return fail("transfer 1");
    uint64_t first_seq = r[0].global_seq;
    printf("batch 2   30.00 from alice (now clock %llu) to bob (clock %llu), recorded at %s\n",
           (unsigned long long)r[0].clock, (unsigned long long)r[1].clock, t1);

    /* 3. someone deposits to bob; a transfer decided on bob's old head must not happen */
    if (bp_append(s, NULL, bob, "bank", KIND_CREDIT, cents(p, 500), 16)) return fail("deposit");
    uint64_t alice_before, alice_after, t2_clock;
    if (bp_entity_head(s, &alice_before, NULL, alice) || bp_store_stats_get(s, &st))
        return fail("head");
    uint64_t events_before = st.events;
    bp_status rc = transfer(s, alice, alice_before, bob, 2 /* stale: bob is at 3 */, t2, 1000, r);
    if (rc != BP_ECONFLICT) return wrong("a transfer on a stale balance was not refused");
    printf("batch 3   refused: %s\n", bp_last_error());
    if (bp_entity_head(s, &alice_after, NULL, alice) || bp_entity_head(s, &t2_clock, NULL, t2) ||
        bp_store_stats_get(s, &st))
        return fail("head");
    printf("          nothing written: alice still at clock %llu, %s has %llu events, "
           "%llu in the store as before\n",
           (unsigned long long)alice_after, t2, (unsigned long long)t2_clock,
           (unsigned long long)st.events);
    if (alice_after != alice_before || t2_clock != 0 || st.events != events_before)
        return wrong("part of a refused batch was written");

    /* reading back: bob's credit knows which batch it came in */
    bp_iter *it;
    const bp_event *ev;
    int in_batch = 0;
    if (bp_stream(s, &it, bob, BP_READ_FULL)) return fail("stream");
    while ((rc = bp_iter_next(it, &ev)) == BP_OK)
        if (ev->batch_id == first_seq) {
            printf("read      %s clock %llu: batch %llu, item %u of %u\n", ev->entity,
                   (unsigned long long)ev->clock, (unsigned long long)ev->batch_id,
                   ev->batch_index + 1, ev->batch_count);
            in_batch += ev->batch_count == 3 && ev->batch_index == 1;
        }
    bp_iter_free(it);
    if (rc != BP_DONE) return fail("read");
    if (in_batch != 1) return wrong("bob's credit does not carry its batch");
    return bp_store_close(s) ? fail("close") : 0;
}
