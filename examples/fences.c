/*
 * fences: a visibility fence is a publish boundary. Appends made into it (from any threads)
 * get tickets but stay invisible -- to reads, cursors, subscribers, projections -- until the
 * fence commits them as one synced batch; a cancelled fence drops them. Appends outside the
 * fence go on and are visible at once. Fenced events take their clocks at commit, so an
 * entity's clocks stay 1, 2, 3... whatever happens to a fence.
 *
 * What to look at:
 *   - before commit: the entities' heads do not move and the tickets are undecided
 *   - an append outside the fence, meanwhile, is visible at once and takes the next clock
 *   - after commit the tickets hold receipts; after cancel they say BP_ECANCELED
 *   - the next append after a cancelled fence takes the next clock: no gap; verify is clean
 *
 *   usage: fences DIR      (re-runnable: each run uses a new order)
 */
#include <batpak/batpak.h>

#include <stdio.h>
#include <string.h>

#define KIND_ORDER BP_KIND(7, 1)
#define KIND_STOCK BP_KIND(7, 2)

/* A status word as a MessagePack string (fixstr, up to 31 bytes). */
static size_t word(uint8_t out[32], const char *w) {
    size_t n = strlen(w);
    out[0] = (uint8_t)(0xa0 | n);
    memcpy(out + 1, w, n);
    return n + 1;
}

static int fail(const char *what) {
    fprintf(stderr, "fences: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "fences: %s\n", what);
    return 1;
}

/* Append outside any fence; returns the event's clock, 0 on error. */
static uint64_t append(bp_store *s, const char *entity, uint16_t kind, const char *w) {
    uint8_t p[32];
    bp_receipt r = BP_RECEIPT_INIT;
    return bp_append(s, &r, entity, "shop", kind, p, word(p, w)) ? 0 : r.clock;
}

/* Stage "order: w1" and "stock: w2" in fence f. */
static bp_status stage(bp_fence *f, bp_ticket *t[2], const char *order, const char *w1,
                       const char *stock, const char *w2) {
    uint8_t p[32];
    bp_status rc = bp_fence_append(f, &t[0], order, "shop", KIND_ORDER, p, word(p, w1), NULL);
    return rc ? rc : bp_fence_append(f, &t[1], stock, "shop", KIND_STOCK, p, word(p, w2), NULL);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./fences-data";
    bp_store *s;
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_open(&s, dir, NULL) || bp_store_diagnostics_get(s, &d)) return fail("open");
    /* names new to the store: its last global_seq only grows (not so the event count, which
     * a compaction lowers) */
    char order[48], stock[48];
    snprintf(order, sizeof order, "order:%llu", (unsigned long long)d.published_seq);
    snprintf(stock, sizeof stock, "stock:%llu", (unsigned long long)d.published_seq);
    if (append(s, order, KIND_ORDER, "created") != 1) return fail("append");

    /* a fence: paid + reserved, invisible until commit */
    bp_fence *f;
    bp_ticket *t[2];
    if (bp_fence_begin(s, &f) || stage(f, t, order, "paid", stock, "reserved"))
        return fail("fence");
    uint64_t order_head, stock_head;
    if (bp_entity_head(s, &order_head, NULL, order) || bp_entity_head(s, &stock_head, NULL, stock))
        return fail("head");
    printf("fence     %zu appends staged; visible: %s at clock %llu, %s at clock %llu; "
           "tickets %s\n",
           bp_fence_len(f), order, (unsigned long long)order_head, stock,
           (unsigned long long)stock_head, bp_ticket_poll(t[0]) ? "decided" : "undecided");
    if (order_head != 1 || stock_head != 0 || bp_ticket_poll(t[0]))
        return wrong("a fenced append was visible before commit");
    uint64_t note = append(s, order, KIND_ORDER, "gift-wrap"); /* outside: visible at once */
    printf("outside   an append to %s meanwhile is visible at once, at clock %llu\n", order,
           (unsigned long long)note);
    if (note != 2) return wrong("the append outside the fence did not take clock 2");

    if (bp_fence_commit(f)) return fail("commit");
    bp_receipt r[2] = {BP_RECEIPT_INIT, BP_RECEIPT_INIT}; /* each is given alone */
    if (bp_ticket_wait(t[0], &r[0], 0) || bp_ticket_wait(t[1], &r[1], 0)) return fail("ticket");
    printf("commit    both visible together: %s clock %llu (seq %llu), %s clock %llu (seq %llu)\n",
           order, (unsigned long long)r[0].clock, (unsigned long long)r[0].global_seq, stock,
           (unsigned long long)r[1].clock, (unsigned long long)r[1].global_seq);
    if (r[0].clock != 3 || r[1].clock != 1 || r[1].global_seq != r[0].global_seq + 1)
        return wrong("the fenced events did not take the next clocks at commit");
    for (int i = 0; i < 2; i++)
        bp_ticket_free(t[i]);
    bp_fence_free(f);

    /* another fence, cancelled: its tickets fail, nothing appears, no clock is used up */
    if (bp_fence_begin(s, &f) || stage(f, t, order, "shipped", stock, "released") ||
        bp_fence_cancel(f))
        return fail("fence 2");
    bp_status t0 = bp_ticket_wait(t[0], NULL, 0), t1 = bp_ticket_wait(t[1], NULL, 0);
    for (int i = 0; i < 2; i++)
        bp_ticket_free(t[i]);
    bp_fence_free(f);
    uint64_t next = append(s, order, KIND_ORDER, "refunded");
    printf("cancel    tickets: %s / %s; the next append to %s takes clock %llu\n", bp_strerror(t0),
           bp_strerror(t1), order, (unsigned long long)next);
    if (t0 != BP_ECANCELED || t1 != BP_ECANCELED) return wrong("cancelled tickets did not fail");
    if (next != 4) return wrong("the order's clocks have a gap");

    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    if (bp_store_verify(s, &vr, NULL)) return fail(vr.first_problem);
    printf("verify    clean: %llu events, every chain and clock sequence checked\n",
           (unsigned long long)vr.events);
    return bp_store_close(s) ? fail("close") : 0;
}
