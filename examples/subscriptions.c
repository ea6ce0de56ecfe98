/*
 * subscriptions: a lossy subscription is a doorbell with a bounded queue. Writers never wait
 * for it: when the queue is full, notices are dropped and counted, and the subscription says
 * from which global_seq to re-read the region with a cursor (which never loses anything).
 *
 * What to look at:
 *   - bp_subscribe_lossy with a queue of 8 notices, while a burst of 20 events is appended
 *     and nobody reads: 8 notices queue up, 12 are dropped, no append waited
 *   - bp_subscription_missed: how many were dropped and from where to catch up
 *   - bp_cursor_open / bp_cursor_next from that seq: the consumer ends with every event once
 *
 *   usage: subscriptions DIR      (re-runnable: each run uses new sensors)
 */
#include <batpak/batpak.h>

#include <stdio.h>

#define BURST 20
#define QUEUE 8
#define KIND_READING BP_KIND(2, 1)

static int fail(const char *what) {
    fprintf(stderr, "subscriptions: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "subscriptions: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./subscriptions-data";
    bp_store *s;
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_open(&s, dir, NULL) || bp_store_diagnostics_get(s, &d)) return fail("open");
    char prefix[48]; /* new: the last global_seq only grows (the event count need not) */
    snprintf(prefix, sizeof prefix, "sensor:%llu:", (unsigned long long)d.published_seq);

    bp_region region = BP_REGION_INIT; /* this run's sensors only */
    region.entity_prefix = prefix;
    bp_subscription *sub;
    if (bp_subscribe_lossy(s, &sub, &region, QUEUE)) return fail("subscribe");

    /* a burst: unsynced appends, so it is quick; the subscriber is busy and reads nothing */
    bp_append_options fast = BP_APPEND_OPTIONS_INIT;
    fast.durability = BP_NO_SYNC;
    uint64_t seqs[BURST];
    for (int i = 0; i < BURST; i++) {
        char sensor[64];
        snprintf(sensor, sizeof sensor, "%s%d", prefix, i % 3);
        const uint8_t reading[] = {(uint8_t)(20 + i)}; /* msgpack positive fixint */
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_ex(s, &r, sensor, "plant", KIND_READING, reading, 1, &fast))
            return fail("append");
        seqs[i] = r.global_seq;
    }
    printf("appended  %d readings (seq %llu..%llu) to a subscription with a queue of %d\n", BURST,
           (unsigned long long)seqs[0], (unsigned long long)seqs[BURST - 1], QUEUE);

    /* the subscriber wakes up: it takes what was queued... */
    int seen = 0;
    uint64_t last = 0;
    bp_notice nt = BP_NOTICE_INIT;
    while (bp_subscription_next(sub, &nt, 0) == BP_OK) {
        if (seen >= BURST || nt.global_seq != seqs[seen]) return wrong("a notice out of order");
        last = nt.global_seq;
        seen++;
    }
    uint64_t missed, from;
    bp_subscription_missed(sub, &missed, &from);
    bp_subscription_stats ss = BP_SUBSCRIPTION_STATS_INIT;
    bp_subscription_stats_get(sub, &ss);
    printf("notices   %d taken, %llu dropped (the writer never waited); re-read from seq %llu\n",
           seen, (unsigned long long)missed, (unsigned long long)from);
    if (seen != QUEUE || missed != BURST - QUEUE || ss.delivered + ss.dropped != BURST)
        return wrong("delivered + dropped is not what was published");
    if (from == 0 || from > last + 1) return wrong("the catch-up seq is after a dropped event");

    /* ...and catches up with a cursor from the seq it was given, skipping what it has */
    bp_cursor *c;
    if (bp_cursor_open(s, &c, &region, from - 1)) return fail("cursor");
    const bp_event *evs[16];
    size_t n;
    bp_status rc;
    int caught_up = 0;
    while ((rc = bp_cursor_next(c, evs, 16, &n, 0)) == BP_OK)
        for (size_t i = 0; i < n; i++) {
            if (evs[i]->global_seq <= last) continue; /* had its notice already */
            if (seen >= BURST || evs[i]->global_seq != seqs[seen])
                return wrong("the cursor skipped an event");
            last = evs[i]->global_seq;
            seen++;
            caught_up++;
        }
    bp_cursor_free(c);
    if (rc != BP_ETIMEDOUT) return fail("cursor next"); /* caught up: nothing new */
    printf("cursor    %d more event(s) read from the index: %d of %d seen, in order\n", caught_up,
           seen, BURST);
    if (seen != BURST) return wrong("the consumer did not end with every event");
    bp_unsubscribe(sub);
    return bp_store_close(s) ? fail("close") : 0;
}
