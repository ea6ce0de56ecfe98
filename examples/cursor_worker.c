/*
 * cursor_worker: a durable worker mails one message per invoice event, at least once, and
 * resumes where it stopped after a restart because its position is checkpointed under an id.
 *
 * What to look at:
 *   - cfg.checkpoint_id: the position is kept in DIR/cursors/invoice-mailer.ckpt; a worker
 *     started again (after a reopen here, or in the next run of this program) delivers only
 *     the invoices it has not handled
 *   - the handler returns an error to be retried: the first try of each worker run "loses the
 *     provider's acknowledgement" after the mail went out; the retry comes with attempt 2
 *     and the same d->idem_key, which the mailer uses to send each mail once
 *
 *   usage: cursor_worker DIR      (re-runnable: each run mails only that run's invoices)
 */
#include <batpak/batpak.h>

#include <stdio.h>
#include <string.h>

#define KIND_INVOICE BP_KIND(4, 1)
#define PER_PHASE 3

/* A fake mail provider that deduplicates by key, as real ones do with an idempotency header.
 * Only the worker's thread touches it while the worker runs. */
typedef struct mailer {
    char sent[2 * PER_PHASE][128]; /* keys of the mails sent in this phase */
    int n_sent, duplicates;
    bool lose_next_ack;
    uint64_t handled_seq[2 * PER_PHASE];
    int n_handled;
} mailer;

static bp_status send_invoice(void *ctx, const bp_delivery *d) {
    mailer *m = ctx;
    bool dup = false;
    for (int i = 0; i < m->n_sent; i++)
        dup |= strcmp(m->sent[i], d->idem_key) == 0;
    if (dup)
        m->duplicates++; /* already sent: the provider answers "ok" and sends nothing */
    else if (m->n_sent < 2 * PER_PHASE)
        strcpy(m->sent[m->n_sent++], d->idem_key);
    if (d->attempt == 1 && m->lose_next_ack) { /* the mail went out, the answer got lost */
        m->lose_next_ack = false;
        return bp_set_error(BP_ETIMEDOUT, "mail provider: no acknowledgement");
    }
    if (m->n_handled < 2 * PER_PHASE) m->handled_seq[m->n_handled++] = d->ev->global_seq;
    return BP_OK;
}

static int fail(const char *what) {
    fprintf(stderr, "cursor_worker: %s: %s\n", what, bp_last_error());
    return 1;
}

/* Append PER_PHASE invoices, then run the worker until it has handled them. */
static int phase(bp_store *s, const char *name) {
    bp_receipt r[PER_PHASE];
    for (int i = 0; i < PER_PHASE; i++) {
        r[i] = (bp_receipt)BP_RECEIPT_INIT;
        char entity[32];
        snprintf(entity, sizeof entity, "customer:%d", i + 1);
        const uint8_t amount[] = {0xcd, 0x01, (uint8_t)(0x90 + i)}; /* msgpack uint16 */
        if (bp_append(s, &r[i], entity, "billing", KIND_INVOICE, amount, sizeof amount))
            return fail("append");
    }
    mailer m = {.lose_next_ack = true};
    bp_region region = BP_REGION_INIT;
    uint16_t kinds[] = {KIND_INVOICE};
    region.kinds = kinds;
    region.n_kinds = 1;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "invoice-mailer";
    cfg.backoff_ms = 1; /* retry quickly */
    bp_worker *w;
    if (bp_cursor_worker(s, &w, &region, send_invoice, &m, &cfg)) return fail("worker");
    /* until the last invoice is handled (at most 5 s) */
    if (bp_worker_wait(w, r[PER_PHASE - 1].global_seq, 5000)) return fail("worker wait");
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &ws);
    if (bp_worker_stop(w)) return fail("worker stop"); /* persists the position, joins */
    printf("%s   invoices at seq %llu..%llu: %llu handled, %llu retried, %d mail(s) sent, "
           "%d duplicate(s) suppressed\n",
           name, (unsigned long long)r[0].global_seq,
           (unsigned long long)r[PER_PHASE - 1].global_seq, (unsigned long long)ws.handled,
           (unsigned long long)ws.retries, m.n_sent, m.duplicates);
    printf("          idem key of the first: %s\n", m.sent[0]);
    bool ok = ws.handled == PER_PHASE && ws.retries == 1 && m.n_sent == PER_PHASE &&
              m.duplicates == 1 && m.n_handled == PER_PHASE;
    for (int i = 0; ok && i < PER_PHASE; i++)
        ok = m.handled_seq[i] == r[i].global_seq; /* exactly this phase's invoices, in order */
    if (!ok) fprintf(stderr, "cursor_worker: %s: not each new invoice mailed exactly once\n", name);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./cursor-worker-data";
    bp_store *s;
    if (bp_store_open(&s, dir, NULL)) return fail("open");
    if (phase(s, "start  ")) return 1;
    if (bp_store_close(s)) return fail("close");
    /* a restart: the worker resumes after its checkpoint, with the new invoices only */
    if (bp_store_open(&s, dir, NULL)) return fail("reopen");
    printf("(store closed and reopened: the worker resumes from its checkpoint)\n");
    if (phase(s, "restart")) return 1;
    return bp_store_close(s) ? fail("close") : 0;
}
