/* An email outbox that survives kill -9: a reactor turns each placed order into
 * one queued email. A child process runs it and is killed mid-stream; the
 * restarted reactor resumes from its checkpoint, and every order still has
 * exactly one email.
 *
 *   usage: outbox DIR      (run it again: nothing is queued twice)
 */
#define _POSIX_C_SOURCE 200809L /* fork, kill, nanosleep */
#include <batpak/batpak.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ORDERS 200

#define ORDER_PLACED(F)                                                                            \
    F(ONE, U32, number, 0)                                                                         \
    F(ONE, STR, customer, 64)
BP_TYPE_STATIC(order_placed, ORDER_PLACED, "shop.order_placed", BP_KIND(2, 1), 1);
#define EMAIL_QUEUED(F)                                                                            \
    F(ONE, U32, order, 0)                                                                          \
    F(ONE, STR, to, 64)                                                                            \
    F(ONE, STR, subject, 80)
BP_TYPE_STATIC(email_queued, EMAIL_QUEUED, "outbox.email_queued", BP_KIND(2, 2), 1);

/* For each order, queue a confirmation email (same trigger -> same reaction). */
static bp_status confirm(void *ctx, const bp_delivery *d, const void *value, bp_reactions *out) {
    (void)ctx;
    (void)d;
    const order_placed *o = value;
    email_queued e = {.order = o->number};
    snprintf(e.to, sizeof e.to, "%s", o->customer);
    snprintf(e.subject, sizeof e.subject, "Your order #%u", o->number);
    struct timespec ts = {0, 200000}; /* rendering the mail takes a moment */
    nanosleep(&ts, NULL);
    return bp_react_typed(out, "outbox", "mail", &email_queued_type, &e);
}

/* Run the reactor until the order at last_seq is handled (or until killed). */
static int run_reactor(const char *dir, uint64_t last_seq) {
    bp_store *s;
    if (bp_store_open(&s, dir, NULL)) return 1;
    bp_region r = BP_REGION_INIT;
    uint16_t kinds[] = {order_placed_type.kind};
    r.kinds = kinds;
    r.n_kinds = 1;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "outbox";
    cfg.checkpoint_every = 8;
    bp_worker *w;
    if (bp_reactor(s, &w, &r, &order_placed_type, confirm, NULL, &cfg)) return 1;
    bp_status rc = bp_worker_wait(w, last_seq, UINT32_MAX); /* or until killed */
    rc = bp_worker_stop(w) ? BP_EIO : rc;
    return rc || bp_store_close(s) ? 1 : 0;
}

static int fail(const char *what) {
    fprintf(stderr, "outbox: %s: %s\n", what, bp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: outbox DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    bp_store *s;
    if (bp_store_open(&s, dir, NULL)) return fail("open");
    /* place the orders; idempotency keys make a second run place nothing new */
    uint64_t last_seq = 0;
    for (uint32_t i = 1; i <= ORDERS; i++) {
        order_placed o = {.number = i};
        snprintf(o.customer, sizeof o.customer, "customer%u@example.com", i);
        char key[32], ent[32];
        snprintf(key, sizeof key, "order-%u", i);
        snprintf(ent, sizeof ent, "order:%u", i);
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        ao.idempotency_key = key;
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_typed(s, &r, ent, "shop", &order_placed_type, &o, &ao))
            return fail("place order");
        if (r.global_seq > last_seq) last_seq = r.global_seq;
    }
    if (bp_store_close(s)) return fail("close");

    /* a child runs the outbox and is killed in the middle */
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return fail("fork");
    if (pid == 0) _exit(run_reactor(dir, last_seq));
    struct timespec ts = {0, 25000000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    printf("outbox    a child ran the reactor and was %s\n",
           WIFSIGNALED(st) ? "killed with SIGKILL mid-stream" : "done before the kill");
    /* restart it: it resumes from its checkpoint and finishes */
    if (run_reactor(dir, last_seq)) return fail("reactor");

    if (bp_store_open(&s, dir, NULL)) return fail("reopen");
    static int emails[ORDERS + 1];
    bp_iter *it;
    const bp_event *ev;
    email_queued e;
    int total = 0;
    if (bp_by_fact_typed(s, &it, &email_queued_type)) return fail("read");
    while (bp_iter_next_typed(it, &ev, &e, &email_queued_type) == BP_OK) {
        if (e.order >= 1 && e.order <= ORDERS) emails[e.order]++;
        total++;
    }
    bp_iter_free(it);
    int wrong = 0;
    for (int i = 1; i <= ORDERS; i++)
        wrong += emails[i] != 1;
    printf("outbox    %d orders, %d emails queued, %d order(s) without exactly one email\n", ORDERS,
           total, wrong);
    if (bp_store_close(s)) return fail("close");
    return wrong ? 1 : 0;
}
