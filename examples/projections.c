/* Projections: an account balance folded from typed events, kept up to date by
 * a watcher, with an upcaster that reads deposits written by an older program.
 *
 *   usage: projections DIR      (run it twice: the second run starts from the
 *                                persisted snapshot instead of refolding)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <batpak/batpak.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Version 1 of a deposit, as an older program wrote it: whole euros. */
#define DEPOSIT_V1(F) F(ONE, I32, euros, 0)
BP_TYPE_STATIC(deposit_v1, DEPOSIT_V1, "bank.deposit", BP_KIND(1, 1), 1);
/* Version 2, the current one: cents and a currency. */
#define DEPOSIT_V2(F)                                                                              \
    F(ONE, I64, cents, 0)                                                                          \
    F(ONE, STR, currency, 3)
BP_TYPE_STATIC(deposit, DEPOSIT_V2, "bank.deposit", BP_KIND(1, 1), 2);
#define WITHDRAWAL(F)                                                                              \
    F(ONE, I64, cents, 0)                                                                          \
    F(OPT, STR, memo, 32)
BP_TYPE_STATIC(withdrawal, WITHDRAWAL, "bank.withdrawal", BP_KIND(1, 2), 1);

static bp_status deposit_v1_to_v2(void *ctx, const void *from, void *to) {
    (void)ctx;
    const deposit_v1 *old = from;
    deposit *now = to;
    now->cents = (int64_t)old->euros * 100;
    strcpy(now->currency, "EUR");
    return BP_OK;
}

/* The projection: a flat struct, folded from both kinds. */
typedef struct balance {
    int64_t cents;
    uint32_t deposits, withdrawals;
} balance;

static bp_status apply(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    balance *b = state;
    if (ev->kind == deposit_type.kind) {
        b->cents += ((const deposit *)value)->cents;
        b->deposits++;
    } else {
        b->cents -= ((const withdrawal *)value)->cents;
        b->withdrawals++;
    }
    return BP_OK;
}

static const bp_type *const kinds_read[] = {&deposit_type, &withdrawal_type};
static const bp_projection balance_projection = {
    sizeof(bp_projection), "balance", 1, sizeof(balance), NULL, apply, kinds_read, 2, NULL, 0, NULL,
    true /* persist */,    0};

/* What the watcher saw last. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static balance seen;
static uint64_t seen_clock;
static int calls;

static void on_balance(void *ctx, const void *state, uint64_t clock) {
    (void)ctx;
    pthread_mutex_lock(&mu);
    seen = *(const balance *)state;
    seen_clock = clock;
    calls++;
    pthread_mutex_unlock(&mu);
}

static int fail(const char *what) {
    fprintf(stderr, "projections: %s: %s\n", what, bp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: projections DIR\n");
        return 2;
    }
    bp_store *s;
    if (bp_store_open(&s, argv[1], NULL)) return fail("open");
    uint64_t head;
    if (bp_entity_head(s, &head, NULL, "acct:alice")) return fail("head");
    if (head == 0) { /* a fresh store: what the old program left behind */
        for (int32_t e = 1; e <= 3; e++) {
            deposit_v1 d = {.euros = e * 10};
            if (bp_append_typed(s, NULL, "acct:alice", "bank", &deposit_v1_type, &d, NULL))
                return fail("append v1");
        }
        printf("wrote 3 version-1 deposits (10, 20, 30 euros)\n");
    }
    /* the current program: version 2 is the registered type; version 1 reads through the
     * upcaster */
    if (bp_register_type(s, &deposit_type) || bp_register_type(s, &withdrawal_type) ||
        bp_register_upcaster(s, &deposit_v1_type, &deposit_type, deposit_v1_to_v2, NULL))
        return fail("register");

    balance b;
    bp_project_info info = BP_PROJECT_INFO_INIT;
    if (bp_project(s, &b, &info, &balance_projection, "acct:alice", BP_CONSISTENT))
        return fail("project");
    printf("balance   %lld cents at clock %llu: %s, %llu event(s) folded\n", (long long)b.cents,
           (unsigned long long)info.clock,
           info.from_snapshot ? "started from the persisted snapshot" : "folded from the start",
           (unsigned long long)info.applied);

    bp_watch *w;
    if (bp_watch_projection(s, &w, &balance_projection, "acct:alice", on_balance, NULL))
        return fail("watch");
    bp_receipt r = BP_RECEIPT_INIT;
    for (int i = 0; i < 5; i++) {
        deposit d = {.cents = 250, .currency = "EUR"};
        if (bp_append_typed(s, &r, "acct:alice", "bank", &deposit_type, &d, NULL))
            return fail("deposit");
    }
    withdrawal wd = {.cents = 1000, .has_memo = true, .memo = "rent"};
    if (bp_append_typed(s, &r, "acct:alice", "bank", &withdrawal_type, &wd, NULL))
        return fail("withdraw");
    /* the watcher catches up with the last append (updates coalesce if it is slow) */
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&mu);
        bool done = seen_clock == r.clock;
        pthread_mutex_unlock(&mu);
        if (done) break;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (bp_watch_stop(w)) return fail("watch stop");
    if (bp_project(s, &b, &info, &balance_projection, "acct:alice", BP_CONSISTENT))
        return fail("project");
    printf("watcher   %d call(s), last at clock %llu: %lld cents\n", calls,
           (unsigned long long)seen_clock, (long long)seen.cents);
    printf("balance   %lld cents after %u deposit(s) and %u withdrawal(s); this project "
           "folded %llu new event(s)\n",
           (long long)b.cents, b.deposits, b.withdrawals, (unsigned long long)info.applied);
    if (seen_clock != info.clock || memcmp(&seen, &b, sizeof b) != 0) {
        fprintf(stderr, "projections: the watcher's last state is not the projection's\n");
        return 1;
    }
    /* a typed read of the first deposit: written as v1, read as v2 */
    bp_iter *it;
    const bp_event *ev;
    deposit first;
    if (bp_by_fact_typed(s, &it, &deposit_type) ||
        bp_iter_next_typed(it, &ev, &first, &deposit_type))
        return fail("typed read");
    char *json;
    if (bp_event_json(s, &json, ev)) return fail("json");
    printf("first     deposit (schema v%u on disk) reads as %s\n",
           BP_EVENT_SCHEMA_VERSION(ev->flags), json);
    bp_free(json);
    bp_iter_free(it);
    return bp_store_close(s) ? fail("close") : 0; /* close writes the projection's snapshot */
}
