/* batpak demo: two bank accounts run through the store, printing what happens.
 *
 * Re-runnable on the same directory: every CAS expectation is read from the
 * entity head, per-run idempotency keys carry the run number, and the welcome
 * bonus key is the same in every run, so later runs show it replayed.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The demo's kinds live in category 0xE so that the types the CLI registers for
 * them rarely meet a user's own kinds (see cli_register_types). */
#define KIND_OPENED BP_KIND(0xE, 1)
#define KIND_DEPOSITED BP_KIND(0xE, 2)
#define KIND_WITHDRAWN BP_KIND(0xE, 3)
#define KIND_RUN BP_KIND(0xE, 0xF01)

/* The demo's payload types (batpak/typed.h). */
#define RUN_FIELDS(F) F(ONE, STR, note, 64)
BP_TYPE_STATIC(demo_run, RUN_FIELDS, "demo.run", KIND_RUN, 1);
#define OPENED_FIELDS(F) F(ONE, STR, owner, 64)
BP_TYPE_STATIC(demo_opened, OPENED_FIELDS, "demo.account_opened", KIND_OPENED, 1);
#define DEPOSITED_FIELDS(F)                                                                        \
    F(ONE, I64, amount, 0)                                                                         \
    F(OPT, STR, memo, 64)                                                                          \
    F(OPT, STR, from, BP_COORD_MAX)
BP_TYPE_STATIC(demo_deposited, DEPOSITED_FIELDS, "demo.deposited", KIND_DEPOSITED, 1);
#define WITHDRAWN_FIELDS(F)                                                                        \
    F(ONE, I64, amount, 0)                                                                         \
    F(OPT, STR, to, BP_COORD_MAX)
BP_TYPE_STATIC(demo_withdrawn, WITHDRAWN_FIELDS, "demo.withdrawn", KIND_WITHDRAWN, 1);

bp_status cli_register_types(bp_store *s) {
    const bp_type *types[] = {&demo_run_type, &demo_opened_type, &demo_deposited_type,
                              &demo_withdrawn_type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        bp_status rc = bp_register_type(s, types[i]);
        if (rc) return rc;
    }
    return BP_OK;
}
#define SCOPE "bank"
#define ALICE "acct:alice"
#define BOB "acct:bob"
#define CURSOR_PAGE 2

typedef struct demo {
    cli_ctx *c;
    bp_store *s;
    uint64_t run;       /* 1 for the first run on this directory */
    uint64_t run_start; /* global_seq of this run's marker event */
} demo;

/* ------------------------------------------------------------------ helpers */

static int demo_fail(demo *d, bp_status rc) {
    return cli_fail_status(d->c, rc);
}

/* out = the MessagePack of v (stolen; built with json_pack). */
static void demo_payload(json_t *v, msgpack_sbuffer *out) {
    if (!v) cli_oom();
    msgpack_sbuffer_init(out);
    cli_json_to_msgpack(v, out);
    json_decref(v);
}

/* Append payload v (stolen) to entity; with cas, expect the entity's current head. */
static bp_status demo_append(demo *d, const char *entity, uint16_t kind, json_t *v, bool cas,
                             const char *key, bp_receipt *r) {
    msgpack_sbuffer payload;
    demo_payload(v, &payload);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = key;
    bp_status rc = BP_OK;
    if (cas) {
        o.has_expected_clock = true;
        rc = bp_entity_head(d->s, &o.expected_clock, NULL, entity);
    }
    if (!rc) rc = bp_append_ex(d->s, r, entity, SCOPE, kind, payload.data, payload.size, &o);
    msgpack_sbuffer_destroy(&payload);
    return rc;
}

/* Projection: fold an account's stream into its balance. */
typedef struct balance {
    int64_t total;
    uint64_t events;
} balance;

static bp_status fold_balance(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    balance *b = state;
    if (ev->kind == KIND_DEPOSITED) b->total += ((const demo_deposited *)value)->amount;
    if (ev->kind == KIND_WITHDRAWN) b->total -= ((const demo_withdrawn *)value)->amount;
    b->events++;
    return BP_OK;
}

static const bp_type *const balance_kinds[] = {&demo_deposited_type, &demo_withdrawn_type};
static const bp_projection balance_projection = {sizeof(bp_projection),
                                                 "demo.balance",
                                                 1,
                                                 sizeof(balance),
                                                 NULL,
                                                 fold_balance,
                                                 balance_kinds,
                                                 2,
                                                 NULL,
                                                 0,
                                                 NULL,
                                                 false,
                                                 0};

/* Project an account's balance (bp_project: the store caches it and folds only new events). */
static int project_balance(demo *d, const char *entity, balance *b, bp_project_info *info) {
    bp_status rc = bp_project(d->s, b, info, &balance_projection, entity, BP_CONSISTENT);
    return rc ? demo_fail(d, rc) : CLI_OK;
}

static const char *short_id(const bp_id *id, char out[37]) {
    bp_id_format(id, out);
    return out;
}

/* -------------------------------------------------------------------- steps */

static int step_open(demo *d) {
    int code = cli_open_write_lifecycle(d->c, &d->s, true);
    if (code != CLI_OK) return code;
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(d->s, &rep);
    printf("open      %s: %s with %llu event(s), %s in %llu us\n", d->c->dir,
           rep.created ? "created a new store" : "existing store", (unsigned long long)rep.events,
           rep.checkpoint_used ? "index loaded from index.ckpt" : "index built from segments",
           (unsigned long long)rep.duration_us);
    /* the payload types, stored with the data (once: later runs find them there), so that
     * any reader names and checks them: batpak schema, batpak ui, the Python binding */
    const bp_type *types[] = {&demo_run_type, &demo_opened_type, &demo_deposited_type,
                              &demo_withdrawn_type};
    unsigned recorded = 0;
    bp_receipt r = BP_RECEIPT_INIT;
    bp_status rc;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if ((rc = bp_schema_record(d->s, &r, types[i]))) return demo_fail(d, rc);
        recorded += r.global_seq != 0;
    }
    if (recorded)
        printf("schemas   recorded %u payload type(s) in the store: `batpak schema` lists "
               "them, other readers check and name their kinds\n",
               recorded);
    rc = demo_append(d, "demo:runs", KIND_RUN, json_pack("{s:s}", "note", "demo run"), true, NULL,
                     &r);
    if (rc) return demo_fail(d, rc);
    d->run = r.clock;
    d->run_start = r.global_seq;
    printf("run       #%llu (marker event at global_seq %llu)\n", (unsigned long long)d->run,
           (unsigned long long)r.global_seq);
    return CLI_OK;
}

/* Open both accounts unless an earlier run did: CAS with expected clock 0. */
static int step_open_accounts(demo *d) {
    const char *accounts[2][2] = {{ALICE, "Alice"}, {BOB, "Bob"}};
    for (int i = 0; i < 2; i++) {
        uint64_t head;
        bp_status rc = bp_entity_head(d->s, &head, NULL, accounts[i][0]);
        if (rc) return demo_fail(d, rc);
        if (head > 0) {
            printf("account   %-10s already open (head clock %llu)\n", accounts[i][0],
                   (unsigned long long)head);
            continue;
        }
        bp_receipt r = BP_RECEIPT_INIT;
        if ((rc = demo_append(d, accounts[i][0], KIND_OPENED,
                              json_pack("{s:s}", "owner", accounts[i][1]), true, NULL, &r)))
            return demo_fail(d, rc);
        printf("account   %-10s opened: expected clock 0 -> clock %llu, global_seq %llu\n",
               accounts[i][0], (unsigned long long)r.clock, (unsigned long long)r.global_seq);
    }
    return CLI_OK;
}

/* A deposit with CAS, then a writer with a stale expectation is refused. */
static int step_cas(demo *d) {
    uint64_t head;
    bp_receipt r = BP_RECEIPT_INIT;
    char id[37];
    bp_status rc = bp_entity_head(d->s, &head, NULL, ALICE);
    if (!rc)
        rc = demo_append(d, ALICE, KIND_DEPOSITED, json_pack("{s:i}", "amount", 100), true, NULL,
                         &r);
    if (rc) return demo_fail(d, rc);
    printf("deposit   100 to %s: expected clock %llu -> clock %llu, event %s, %s\n", ALICE,
           (unsigned long long)head, (unsigned long long)r.clock, short_id(&r.event_id, id),
           r.durability == BP_DUR_SYNC ? "durable (fdatasynced)" : "not yet synced");
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = head; /* what a slower writer read before our deposit */
    msgpack_sbuffer payload;
    demo_payload(json_pack("{s:i}", "amount", 5), &payload);
    rc = bp_append_ex(d->s, &r, ALICE, SCOPE, KIND_DEPOSITED, payload.data, payload.size, &o);
    msgpack_sbuffer_destroy(&payload);
    if (rc != BP_ECONFLICT)
        return rc ? demo_fail(d, rc) : cli_fail(d->c, CLI_EIO, "stale CAS was accepted");
    printf("stale     a writer still expecting clock %llu is refused: %s\n",
           (unsigned long long)head, bp_last_error());
    return CLI_OK;
}

/* The same idempotency key twice: the retry returns the original receipt. */
static int step_idempotent(demo *d) {
    const char *key = "demo:welcome-bonus:bob";
    for (int attempt = 1; attempt <= 2; attempt++) {
        bp_receipt r = BP_RECEIPT_INIT;
        char id[37];
        bp_status rc =
            demo_append(d, BOB, KIND_DEPOSITED,
                        json_pack("{s:i,s:s}", "amount", 50, "memo", "welcome"), false, key, &r);
        if (rc) return demo_fail(d, rc);
        printf("bonus     attempt %d with key %s: event %s at global_seq %llu, %s\n", attempt, key,
               short_id(&r.event_id, id), (unsigned long long)r.global_seq,
               r.replayed ? "replayed (nothing written)" : "written");
    }
    return CLI_OK;
}

/* A transfer: a withdrawal proposal run through the gate set, committed (when allowed) by
 * a commit function that appends it together with the matching deposit as one batch. */
typedef struct transfer {
    demo *d;
    const char *to;
    int64_t amount;
    int64_t balance; /* the balance the gate saw */
    msgpack_sbuffer p_in;
    bp_receipt r[2];
} transfer;

/* Gate no-overdraft: reads the store (projects the balance) and denies what it cannot cover. */
static bp_status gate_no_overdraft(void *data, bp_store *s, const bp_proposal *p, bp_denial *deny) {
    (void)data;
    (void)s;
    transfer *t = p->context;
    balance b;
    if (project_balance(t->d, p->entity, &b, NULL) != CLI_OK) return BP_EIO; /* reported */
    t->balance = b.total;
    if (b.total >= t->amount) return BP_OK;
    return bp_deny(deny, 1, "balance %lld cannot cover %lld", (long long)b.total,
                   (long long)t->amount);
}

/* Commit function: the approved withdrawal (with the CAS expectation the verdict carries) and
 * the deposit, CAS-checked too, as one atomic batch. */
static bp_status commit_transfer(void *ctx, bp_store *s, const bp_proposal *p,
                                 const bp_append_options *opts, bp_receipt *receipt) {
    transfer *t = ctx;
    bp_append_options o_in = BP_APPEND_OPTIONS_INIT;
    char key_in[64];
    snprintf(key_in, sizeof key_in, "demo:run-%llu:transfer-in", (unsigned long long)t->d->run);
    o_in.idempotency_key = key_in;
    o_in.has_expected_clock = true;
    bp_status rc = bp_entity_head(s, &o_in.expected_clock, NULL, t->to);
    if (rc) return rc;
    bp_batch_item items[2] = {{p->entity, p->scope, p->kind, p->payload, p->len, opts},
                              {t->to, SCOPE, KIND_DEPOSITED, t->p_in.data, t->p_in.size, &o_in}};
    t->r[0].struct_size = sizeof t->r[0]; /* the stride */
    rc = bp_append_batch(s, t->r, items, 2);
    if (!rc && receipt) *receipt = t->r[0];
    return rc;
}

static int step_transfer(demo *d, const bp_gate_set *gates, const char *from, const char *to,
                         int64_t amount) {
    char key_out[64];
    snprintf(key_out, sizeof key_out, "demo:run-%llu:transfer-out", (unsigned long long)d->run);
    transfer t;
    memset(&t, 0, sizeof t);
    t.d = d;
    t.to = to;
    t.amount = amount;
    msgpack_sbuffer p_out;
    demo_payload(json_pack("{s:I,s:s}", "amount", (json_int_t)amount, "to", to), &p_out);
    demo_payload(json_pack("{s:I,s:s}", "amount", (json_int_t)amount, "from", from), &t.p_in);
    bp_append_options o_out = BP_APPEND_OPTIONS_INIT;
    o_out.idempotency_key = key_out;
    bp_proposal p = {sizeof(bp_proposal), from,       SCOPE,  KIND_WITHDRAWN,
                     p_out.data,          p_out.size, &o_out, &t};
    bp_verdict *v = NULL;
    int code = CLI_OK;
    bp_status rc = bp_evaluate(d->s, &v, gates, &p, BP_EVAL_FAIL_FAST);
    if (rc == BP_EDENIED) {
        bp_receipt dr_event = BP_RECEIPT_INIT;
        bp_denial_receipt dr = BP_DENIAL_RECEIPT_INIT;
        dr.event = &dr_event;
        const bp_denial *dn;
        bp_verdict_denials(v, &dn);
        rc = bp_append_denial(d->s, &dr, v, &p);
        if (!rc)
            printf("gate      %s denies withdrawing %lld from %s (%s); nothing transferred, the "
                   "denial is recorded in %s's chain at clock %llu%s\n",
                   dn[0].gate, (long long)amount, from, dn[0].message, from,
                   (unsigned long long)dr.event->clock, dr.is_signed ? " (signed receipt)" : "");
    } else if (rc == BP_OK) {
        rc = bp_commit(d->s, NULL, v, &p, commit_transfer, &t);
        if (!rc)
            printf("transfer  %lld %s -> %s passed the gates and committed as one atomic batch: "
                   "global_seq %llu (%s clock %llu) and %llu (%s clock %llu)\n",
                   (long long)amount, from, to, (unsigned long long)t.r[0].global_seq, from,
                   (unsigned long long)t.r[0].clock, (unsigned long long)t.r[1].global_seq, to,
                   (unsigned long long)t.r[1].clock);
    }
    if (rc) code = demo_fail(d, rc);
    bp_verdict_free(v);
    msgpack_sbuffer_destroy(&p_out);
    msgpack_sbuffer_destroy(&t.p_in);
    return code;
}

static int step_projection(demo *d) {
    const char *accounts[] = {ALICE, BOB};
    for (int i = 0; i < 2; i++) {
        balance b;
        bp_project_info info = BP_PROJECT_INFO_INIT;
        int code = project_balance(d, accounts[i], &b, &info);
        if (code != CLI_OK) return code;
        printf("balance   %-10s %lld (projection over %llu deposit/withdrawal event(s); this "
               "call folded %llu, %s)\n",
               accounts[i], (long long)b.total, (unsigned long long)b.events,
               (unsigned long long)info.applied,
               info.from_cache ? "the rest came from the cache" : "nothing was cached");
    }
    return CLI_OK;
}

/* Collects the global_seqs of one cursor page as text. */
typedef struct page_text {
    char text[256];
    size_t len;
} page_text;

static int page_collect(void *user, const bp_event *ev) {
    page_text *p = user;
    if (p->len < sizeof p->text - 24)
        p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, " %llu:%s",
                                   (unsigned long long)ev->global_seq, ev->entity);
    return CLI_OK;
}

/* A resumable cursor over this run's account events, CURSOR_PAGE at a time. */
static int step_cursor(demo *d) {
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:";
    r.from_seq = d->run_start;
    uint64_t pos = 0, count = 0;
    printf("cursor    query entity-prefix acct: from global_seq %llu, pages of %d:\n",
           (unsigned long long)d->run_start, CURSOR_PAGE);
    for (int page = 1;; page++) {
        page_text t = {{0}, 0};
        int code = cli_query_page(d->c, d->s, &r, BP_READ_INDEX_ONLY, CURSOR_PAGE, page_collect, &t,
                                  &pos, &count);
        if (code != CLI_OK) return code;
        if (count == 0) break;
        printf("          page %d:%s -> resume after position %llu\n", page, t.text,
               (unsigned long long)pos);
        if (count < CURSOR_PAGE) break;
    }
    return CLI_OK;
}

/* A durable cursor worker: it delivers the account events to a handler (a "statement
 * printer") at least once, in order, and keeps its position in DIR/cursors/, so a re-run
 * resumes after what the last one handled. */
typedef struct statements {
    uint64_t delivered, first_seq, last_seq;
    int64_t moved; /* deposits minus withdrawals seen */
} statements;

static bp_status statement_line(void *ctx, const bp_delivery *dl) {
    statements *st = ctx;
    if (!st->delivered) st->first_seq = dl->ev->global_seq;
    st->delivered++;
    st->last_seq = dl->ev->global_seq;
    if (dl->ev->kind == KIND_DEPOSITED || dl->ev->kind == KIND_WITHDRAWN) st->moved++;
    return BP_OK;
}

static int step_worker(demo *d) {
    bp_region r = BP_REGION_INIT;
    r.entity_prefix = "acct:";
    uint64_t target; /* the region's newest event: the worker is done when it is there */
    int code = cli_region_last_seq(d->c, d->s, &r, &target);
    if (code != CLI_OK) return code;
    bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
    cfg.checkpoint_id = "demo.statements";
    statements st = {0, 0, 0, 0};
    bp_worker *w;
    bp_status rc = bp_cursor_worker(d->s, &w, &r, statement_line, &st, &cfg);
    if (rc) return demo_fail(d, rc);
    bp_worker_wait(w, target, 10000); /* up to 10 s: the handler only counts */
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    bp_worker_stats_get(w, &ws);
    rc = bp_worker_stop(w);
    if (rc) return demo_fail(d, rc);
    if (ws.position < target)
        return cli_fail(d->c, CLI_EIO, "worker: stopped at global_seq %llu, short of %llu",
                        (unsigned long long)ws.position, (unsigned long long)target);
    printf("worker    cursor worker demo.statements delivered %llu event(s) (%lld money "
           "movement(s)), global_seq %llu..%llu, in order, at least once; its position is "
           "persisted, so the next run resumes after %llu\n",
           (unsigned long long)st.delivered, (long long)st.moved, (unsigned long long)st.first_seq,
           (unsigned long long)st.last_seq, (unsigned long long)ws.position);
    return CLI_OK;
}

static int step_verify(demo *d) {
    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    bp_status rc = bp_store_verify(d->s, &rep, NULL);
    if (rc && rc != BP_ECORRUPT) return demo_fail(d, rc);
    printf("verify    %s: %u segment(s), %llu frame(s), %llu event(s), %llu entit%s; every CRC, "
           "hash and chain checked\n",
           rep.problems ? "PROBLEMS" : "clean", rep.segments, (unsigned long long)rep.frames,
           (unsigned long long)rep.events, (unsigned long long)rep.entities,
           rep.entities == 1 ? "y" : "ies");
    if (rep.problems) return cli_fail(d->c, CLI_ECORRUPT, "verify: %s", rep.first_problem);
    return CLI_OK;
}

int cmd_demo(cli_ctx *c, int argc, char **argv) {
    int code = cli_no_arguments(c, argc, argv);
    if (code != CLI_OK) return code;
    if (!c->dir_given) c->dir = "./demo-data"; /* neither --dir nor $BATPAK_DIR */
    demo d = {c, NULL, 0, 0};
    bp_gate_set *gates;
    if (bp_gate_set_new(&gates) || bp_gate_set_add(gates, "no-overdraft", gate_no_overdraft, NULL))
        cli_oom();
    printf("batpak demo: two bank accounts in an embedded store\n");
    enum { STEPS = 10 };
    static const char *const names[STEPS] = {"open",     "accounts", "cas",     "idempotency",
                                             "transfer", "denial",   "project", "query",
                                             "worker",   "verify"};
    uint64_t took[STEPS + 1] = {0}, t0 = cli_now_us(), start = t0;
    for (int i = 0; i < STEPS && code == CLI_OK; i++) {
        switch (i) {
        case 0:
            code = step_open(&d);
            break;
        case 1:
            code = step_open_accounts(&d);
            break;
        case 2:
            code = step_cas(&d);
            break;
        case 3:
            code = step_idempotent(&d);
            break;
        case 4:
            code = step_transfer(&d, gates, ALICE, BOB, 30);
            break;
        case 5:
            code = step_transfer(&d, gates, BOB, ALICE, 1000000);
            break;
        case 6:
            code = step_projection(&d);
            break;
        case 7:
            code = step_cursor(&d);
            break;
        case 8:
            code = step_worker(&d);
            break;
        default:
            code = step_verify(&d);
            break;
        }
        uint64_t t = cli_now_us();
        took[i] = t - t0;
        t0 = t;
    }
    bp_gate_set_free(gates);
    if (!d.s) return code;
    code = cli_close(c, d.s, code);
    took[STEPS] = cli_now_us() - t0;
    if (code != CLI_OK) return code;
    printf("close     synced, index checkpoint written\n");
    printf("timings  ");
    for (int i = 0; i <= STEPS; i++)
        printf(" %s %.2f ms%s", i < STEPS ? names[i] : "close", (double)took[i] / 1000.0,
               i < STEPS ? "," : "");
    printf("\n          total %.1f ms (durable appends wait for their fdatasync)\n",
           (double)(cli_now_us() - start) / 1000.0);
    printf("next      %s --dir %s query --entity-prefix acct:   (the events, as NDJSON)\n"
           "          %s --dir %s stats   (counts and sizes)\n"
           "          %s --dir %s demo    (again: it resumes where this run stopped)\n",
           c->prog, c->dir, c->prog, c->dir, c->prog, c->dir);
    return code;
}
