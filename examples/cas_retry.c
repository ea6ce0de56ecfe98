/* cas_retry: optimistic concurrency, the canonical loop. Four threads deposit into one
 * account at once, durably. Each deposit reads the account's head, decides (here: the new
 * balance), appends with expected_clock = that head, and on BP_ECONFLICT reads again and
 * decides again: no sleep, no backoff. The library orders the retries (a writer that lost a
 * race goes first next), so no deposit needs more retries than there are other writers, and
 * a conflict only means another deposit was written after the head was read. An idempotency
 * key makes the retry of a request that did commit harmless. doc/GUIDE.md, "Optimistic
 * concurrency: the retry loop". */
#include <batpak/batpak.h>
#include <pthread.h>
#include <stdio.h>

#define WRITERS 4
#define DEPOSITS 25 /* per writer */

typedef struct teller {
    bp_store *s;
    int id;
    int max_retries; /* the most one deposit needed */
    int failed;
} teller;

/* One deposit of 10 as request request_id: read, decide, append; retry on a conflict. */
static int deposit(bp_store *s, const char *account, const char *request_id, int *retries) {
    static const unsigned char payload[] = {0x81, 0xa3, 'a', 'd', 'd', 0x0a}; /* {"add":10} */
    for (*retries = 0; *retries <= 100; ++*retries) { /* a safety net far above WRITERS */
        uint64_t clock;
        if (bp_entity_head(s, &clock, NULL, account) != BP_OK) break;
        /* here a real program reads the state it decides on (bp_project, bp_stream): the
         * head read returned every event written so far, and every read shows them */
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.has_expected_clock = true;
        o.expected_clock = clock;
        o.idempotency_key = request_id;
        o.durability = (bp_durability)BP_DURABLE;
        bp_receipt r = BP_RECEIPT_INIT;
        bp_status rc =
            bp_append_ex(s, &r, account, "bank", BP_KIND(1, 2), payload, sizeof payload, &o);
        if (rc == BP_OK) return 0; /* r.replayed: this request was committed before */
        if (rc != BP_ECONFLICT) break;
    }
    fprintf(stderr, "deposit %s: %s\n", request_id, bp_last_error());
    return -1;
}

static void *teller_main(void *arg) {
    teller *t = arg;
    for (int i = 0; i < DEPOSITS; i++) {
        char request[64];
        snprintf(request, sizeof request, "teller-%d-deposit-%d", t->id, i);
        int retries;
        if (deposit(t->s, "account:7", request, &retries)) t->failed++;
        if (retries > t->max_retries) t->max_retries = retries;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./cas-data";
    bp_store *s;
    if (bp_store_open(&s, dir, NULL) != BP_OK) {
        fprintf(stderr, "open: %s\n", bp_last_error());
        return 1;
    }
    uint64_t before;
    if (bp_entity_head(s, &before, NULL, "account:7") != BP_OK) return 1;
    teller t[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        t[i] = (teller){s, i, 0, 0};
        pthread_create(&th[i], NULL, teller_main, &t[i]);
    }
    int bad = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        printf("teller %d: %d deposits, at most %d retries for one\n", i, DEPOSITS,
               t[i].max_retries);
        bad |= t[i].failed || t[i].max_retries > WRITERS - 1;
    }
    uint64_t after;
    if (bp_entity_head(s, &after, NULL, "account:7") != BP_OK) return 1;
    /* run again on the same directory: the same request ids are replayed, nothing is written */
    uint64_t expect = before ? before : (uint64_t)WRITERS * DEPOSITS;
    printf("account:7 holds %llu deposits (expected %llu)\n", (unsigned long long)after,
           (unsigned long long)expect);
    if (after != expect) bad = 1;
    return bp_store_close(s) == BP_OK && !bad ? 0 : 1;
}
