/*
 * reactor: each payment gets two reactions -- a receipt on its order and a posting in the
 * ledger -- appended as one atomic batch with causation_id = the payment and the payment's
 * correlation_id, so the story can be walked back from any event in it.
 *
 * Reactions are written exactly once. A child process runs the reactor, writes every
 * reaction and dies before its checkpoint is saved (as a crash would); the restarted reactor
 * gets every payment again and appends nothing, because each reaction's idempotency key
 * ("<checkpoint id>:<payment id>:<i>") is already committed.
 *
 * What to look at:
 *   - on_payment: the handler only collects reactions (bp_react_typed), the same every time
 *   - the restart: every payment handled again, not one event appended
 *   - bp_append_reaction for a single follow-up, and bp_walk_ancestors(BP_WALK_CAUSATION)
 *
 *   usage: reactor DIR      (re-runnable: each run takes new payments)
 */
#define _POSIX_C_SOURCE 200809L /* fork */
#include <batpak/batpak.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAYMENTS 4
#define PAYMENT(F) F(ONE, U32, order, 0) F(ONE, I64, cents, 0)
BP_TYPE_STATIC(payment, PAYMENT, "shop.payment_received", BP_KIND(5, 1), 1);
#define RECEIPT(F) F(ONE, I64, cents, 0)
BP_TYPE_STATIC(receipt, RECEIPT, "shop.receipt_issued", BP_KIND(5, 2), 1);
#define POSTING(F) F(ONE, U32, order, 0) F(ONE, I64, cents, 0)
BP_TYPE_STATIC(posting, POSTING, "ledger.posted", BP_KIND(5, 3), 1);

static bp_status on_payment(void *ctx, const bp_delivery *d, const void *value, bp_reactions *out) {
    (void)ctx;
    const payment *p = value;
    receipt r = {.cents = p->cents};
    posting l = {.order = p->order, .cents = p->cents};
    char ledger[48];
    snprintf(ledger, sizeof ledger, "ledger:%u", p->order / 100); /* one ledger per run */
    bp_status rc = bp_react_typed(out, d->ev->entity, "shop", &receipt_type, &r);
    return rc ? rc : bp_react_typed(out, ledger, "ledger", &posting_type, &l);
}

static int fail(const char *what) {
    fprintf(stderr, "reactor: %s: %s\n", what, bp_last_error());
    return 1;
}

/* Run the reactor until the payment at last_seq is handled; *handled: how many it handled. */
static int react_until(bp_store *s, uint64_t last_seq, uint64_t *handled, bool crash) {
    bp_region region = BP_REGION_INIT;
    uint16_t kinds[] = {payment_type.kind}; /* not its own reactions */
    region.kinds = kinds;
    region.n_kinds = 1;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "billing";
    cfg.checkpoint_every = 1000; /* saved at stop: a crash before it redelivers everything */
    bp_worker *w;
    if (bp_reactor(s, &w, &region, &payment_type, on_payment, NULL, &cfg)) return 1;
    bp_status waited = bp_worker_wait(w, last_seq, 5000); /* handled up to last_seq */
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &ws);
    if (crash) _exit(waited == BP_OK ? 0 : 1); /* no stop, no close, no checkpoint */
    *handled = ws.handled;
    return bp_worker_stop(w) ? 1 : 0;
}

static int wrong(const char *what) {
    fprintf(stderr, "reactor: %s\n", what);
    return 1;
}

/* The walk: each ancestor, nearest first; it must end at the payment, two links back. */
typedef struct walk {
    bp_id correlation;
    uint32_t depth;
    uint16_t last_kind;
} walk;

static bp_status show(void *ctx, const bp_event *ev, uint32_t depth) {
    walk *w = ctx;
    bool same = memcmp(&ev->correlation_id, &w->correlation, sizeof(bp_id)) == 0;
    printf("          <- depth %u: %s, kind 0x%04x%s\n", depth, ev->entity, ev->kind,
           same ? ", same correlation id" : "");
    if (!same) return bp_set_error(BP_ECORRUPT, "the correlation id changed along the walk");
    w->depth = depth;
    w->last_kind = ev->kind;
    return BP_OK;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./reactor-data";
    bp_store *s;
    bp_store_stats st = BP_STORE_STATS_INIT;
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_open(&s, dir, NULL) || bp_store_diagnostics_get(s, &d)) return fail("open");
    /* orders of this run: run*100 + 1.. (the last global_seq only grows; the event count need
     * not, after a compaction) */
    unsigned run = (unsigned)d.published_seq;
    uint64_t last_seq = 0;
    for (unsigned i = 1; i <= PAYMENTS; i++) {
        payment p = {.order = run * 100 + i, .cents = 1000 * i};
        char order[48];
        snprintf(order, sizeof order, "order:%u", p.order);
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_typed(s, &r, order, "shop", &payment_type, &p, NULL)) return fail("pay");
        last_seq = r.global_seq;
    }
    if (bp_store_close(s)) return fail("close");
    printf("payments  %d received, orders %u..%u\n", PAYMENTS, run * 100 + 1, run * 100 + PAYMENTS);

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return fail("fork");
    if (pid == 0) _exit(bp_store_open(&s, dir, NULL) || react_until(s, last_seq, NULL, true));
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return wrong("the child reactor did not get through the payments");
    printf("crash     a child ran the reactor and exited before saving its checkpoint\n");

    uint64_t before, handled;
    if (bp_store_open(&s, dir, NULL) || bp_store_stats_get(s, &st)) return fail("reopen");
    before = st.events;
    if (react_until(s, last_seq, &handled, false) || bp_store_stats_get(s, &st))
        return fail("reactor");
    printf("restart   the reactor handled %llu payment(s) again and appended %llu event(s)\n",
           (unsigned long long)handled, (unsigned long long)(st.events - before));
    if (handled != PAYMENTS || st.events != before) return wrong("reactions written twice");

    /* each order: its payment, then one receipt caused by it; the ledger: one posting each */
    char entity[48];
    snprintf(entity, sizeof entity, "ledger:%u", run);
    uint64_t postings;
    if (bp_entity_head(s, &postings, NULL, entity)) return fail("ledger");
    bp_receipt note = BP_RECEIPT_INIT;
    for (unsigned i = 1; i <= PAYMENTS; i++) {
        snprintf(entity, sizeof entity, "order:%u", run * 100 + i);
        bp_iter *it;
        const bp_event *ev;
        bp_id paid = {{0}};
        int n = 0, linked = 0;
        bp_status rc;
        if (bp_stream(s, &it, entity, BP_READ_FULL)) return fail("stream");
        while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
            if (++n == 1) paid = ev->event_id;
            if (n != 2) continue;
            linked = ev->has_causation && !memcmp(&ev->causation_id, &paid, sizeof paid) &&
                     !memcmp(&ev->correlation_id, &paid, sizeof paid);
            if (i == PAYMENTS && /* a single follow-up by hand, caused by the last receipt */
                bp_append_reaction(s, &note, ev, "customer:ada", "crm", BP_KIND(5, 4),
                                   (const uint8_t[]){0x81, 0xa3, 's', 'm', 's', 0xc3}, 6, NULL))
                return fail("append reaction");
        }
        bp_iter_free(it);
        if (rc != BP_DONE) return fail("read");
        if (n != 2 || !linked) return wrong("an order has not exactly one receipt linked to it");
    }
    printf("links     %d receipts and %llu ledger postings, each caused by its payment\n", PAYMENTS,
           (unsigned long long)postings);
    if (postings != PAYMENTS) return wrong("the ledger has not one posting per payment");

    /* from the follow-up back to the payment: customer:ada <- order (receipt) <- payment */
    bp_event *start;
    if (bp_get(s, &start, &note.event_id)) return fail("get");
    walk w = {.correlation = start->correlation_id};
    bp_event_free(start);
    printf("walk      from the follow-up on customer:ada, along causation links:\n");
    if (bp_walk_ancestors(s, &note.event_id, BP_WALK_CAUSATION, 0, show, &w)) return fail("walk");
    if (w.depth != 2 || w.last_kind != payment_type.kind)
        return wrong("the walk did not end at the payment");
    return bp_store_close(s) ? fail("close") : 0;
}
