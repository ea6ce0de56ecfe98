/* Gates, gate sets, evaluate -> commit, persisted denials, signed receipts,
 * key files, key registries and receipt JSON (batpak/guard.h, batpak/sign.h). */
#include "t.h"
#include "format/format.h"
#include "guard/guard_impl.h"

#include <pthread.h>
#include <sodium.h>

static uint64_t count_events(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_stats_get(s, &st)) return UINT64_MAX;
    return st.events;
}

/* ------------------------------------------------------------ test gates */

typedef struct trace {
    char order[16]; /* which gates ran, one letter each */
    int n;
} trace;

typedef struct tgate {
    char letter;
    bp_status result; /* BP_OK, BP_EDENIED or an error */
    int32_t code;
    trace *t;
} tgate;

static bp_status tgate_fn(void *data, bp_store *s, const bp_proposal *p, bp_denial *deny) {
    (void)s;
    (void)p;
    tgate *g = data;
    g->t->order[g->t->n++] = g->letter;
    if (g->result == BP_EDENIED) return bp_deny(deny, g->code, "gate %c says no", g->letter);
    return g->result;
}

static bp_proposal proposal(const char *entity, const char *payload) {
    bp_proposal p = {sizeof(bp_proposal), entity, "acct", BP_KIND(1, 1), payload,
                     strlen(payload),     NULL,   NULL};
    return p;
}

static void test_gate_sets(void) {
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    trace t = {"", 0};
    tgate a = {'a', BP_OK, 0, &t};
    CHECK_EQ(bp_gate_set_add(gs, "", tgate_fn, &a), BP_EINVAL);
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[79] = 0;
    CHECK_EQ(bp_gate_set_add(gs, longname, tgate_fn, &a), BP_EINVAL);
    CHECK_EQ(bp_gate_set_add(gs, "a", NULL, &a), BP_EINVAL);
    CHECK_OK(bp_gate_set_add(gs, "a", tgate_fn, &a));
    CHECK_EQ(bp_gate_set_add(gs, "a", tgate_fn, &a), BP_EEXIST);
    CHECK(strstr(bp_last_error(), "'a'") != NULL);
    for (int i = 1; i < BP_GATES_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        CHECK_OK(bp_gate_set_add(gs, name, tgate_fn, &a));
    }
    CHECK_EQ(bp_gate_set_count(gs), BP_GATES_MAX);
    CHECK_EQ(bp_gate_set_add(gs, "one-more", tgate_fn, &a), BP_ETOOBIG);
    bp_gate_set_free(gs);
    bp_gate_set_free(NULL);
}

static void test_fail_fast_and_collect_all(void) {
    const char *dir = t_dir("guard-modes");
    bp_store *s = t_open(dir, NULL);
    trace t = {"", 0};
    tgate a = {'a', BP_OK, 0, &t}, b = {'b', BP_EDENIED, 11, &t}, c = {'c', BP_OK, 0, &t},
          d = {'d', BP_EDENIED, 22, &t};
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    CHECK_OK(bp_gate_set_add(gs, "A", tgate_fn, &a));
    CHECK_OK(bp_gate_set_add(gs, "B", tgate_fn, &b));
    CHECK_OK(bp_gate_set_add(gs, "C", tgate_fn, &c));
    CHECK_OK(bp_gate_set_add(gs, "D", tgate_fn, &d));
    bp_proposal p = proposal("acct:1", "x");
    bp_verdict *v;
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, BP_EVAL_FAIL_FAST), BP_EDENIED);
    CHECK(strstr(bp_last_error(), "gate 'B' (code 11): gate b says no") != NULL);
    CHECK(strcmp(t.order, "ab") == 0);
    CHECK(!bp_verdict_allowed(v));
    CHECK_EQ(bp_verdict_gates_run(v), 2);
    const bp_denial *dn;
    CHECK_EQ(bp_verdict_denials(v, &dn), 1);
    CHECK(strcmp(dn[0].gate, "B") == 0 && dn[0].code == 11);
    bp_verdict_free(v);

    memset(&t, 0, sizeof t);
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, BP_EVAL_COLLECT_ALL), BP_EDENIED);
    CHECK(strcmp(t.order, "abcd") == 0);
    CHECK_EQ(bp_verdict_gates_run(v), 4);
    CHECK_EQ(bp_verdict_denials(v, &dn), 2);
    CHECK(strcmp(dn[0].gate, "B") == 0 && strcmp(dn[1].gate, "D") == 0 && dn[1].code == 22);
    bp_verdict_free(v);

    /* all allow: an allowed verdict with no denials */
    b.result = d.result = BP_OK;
    memset(&t, 0, sizeof t);
    CHECK_OK(bp_evaluate(s, &v, gs, &p, BP_EVAL_FAIL_FAST));
    CHECK(bp_verdict_allowed(v) && strcmp(t.order, "abcd") == 0);
    CHECK_EQ(bp_verdict_denials(v, &dn), 0);
    CHECK(dn == NULL);
    bp_verdict_free(v);

    /* a gate that fails stops evaluation with its status and names itself */
    c.result = BP_EIO;
    memset(&t, 0, sizeof t);
    v = (bp_verdict *)1;
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, BP_EVAL_COLLECT_ALL), BP_EIO);
    CHECK(v == NULL && strcmp(t.order, "abc") == 0);
    CHECK(strstr(bp_last_error(), "gate 'C' failed") != NULL);
    c.result = 7; /* neither OK nor DENIED */
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, BP_EVAL_COLLECT_ALL), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "returned 7") != NULL);
    c.result = BP_OK;

    /* bad proposals and modes are refused before any gate runs */
    memset(&t, 0, sizeof t);
    bp_proposal bad = proposal("batpak:mine", "x");
    CHECK_EQ(bp_evaluate(s, &v, gs, &bad, BP_EVAL_FAIL_FAST), BP_EINVAL);
    bad = proposal("acct:1", "x");
    bad.kind = BP_KIND_SYSTEM_DENIAL;
    CHECK_EQ(bp_evaluate(s, &v, gs, &bad, BP_EVAL_FAIL_FAST), BP_EINVAL);
    bad = proposal("", "x");
    CHECK_EQ(bp_evaluate(s, &v, gs, &bad, BP_EVAL_FAIL_FAST), BP_EINVAL);
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, 9), BP_EINVAL);
    CHECK_EQ(bp_evaluate(s, &v, NULL, &p, 0), BP_EINVAL);
    CHECK_EQ(t.n, 0);
    CHECK_EQ(count_events(s), 0);
    bp_gate_set_free(gs);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ---------------------------------------------------- a bank-like domain */

typedef struct bank {
    int64_t overdraft_floor; /* balance may not go below */
} bank;

/* payload: a decimal amount as text ("+100", "-30"); balance = sum */
static bp_status balance_of(bp_store *s, const char *entity, int64_t *bal) {
    *bal = 0;
    bp_iter *it;
    bp_status rc = bp_stream(s, &it, entity, BP_READ_FULL);
    if (rc) return rc;
    const bp_event *ev;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
        if (ev->kind != BP_KIND(1, 1)) continue;
        char num[32];
        snprintf(num, sizeof num, "%.*s", (int)ev->payload_len, (const char *)ev->payload);
        *bal += strtoll(num, NULL, 10);
    }
    bp_iter_free(it);
    return rc == BP_DONE ? BP_OK : rc;
}

static bp_status no_overdraft(void *data, bp_store *s, const bp_proposal *p, bp_denial *deny) {
    bank *b = data;
    int64_t bal;
    bp_status rc = balance_of(s, p->entity, &bal);
    if (rc) return rc;
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)p->len, (const char *)p->payload);
    int64_t after = bal + strtoll(num, NULL, 10);
    if (after < b->overdraft_floor)
        return bp_deny(deny, 1, "balance %lld would become %lld", (long long)bal, (long long)after);
    return BP_OK;
}

static void test_commit_rules(void) {
    const char *dir = t_dir("guard-commit");
    const char *dir2 = t_dir("guard-commit-other");
    bp_store *s = t_open(dir, NULL);
    bp_store *s2 = t_open(dir2, NULL);
    bank bk = {0};
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    CHECK_OK(bp_gate_set_add(gs, "no-overdraft", no_overdraft, &bk));

    bp_proposal dep = proposal("acct:1", "+100");
    bp_verdict *v;
    CHECK_OK(bp_evaluate(s, &v, gs, &dep, 0));
    CHECK_EQ(bp_verdict_head_clock(v), 0);
    bp_hash dg, dg2;
    bp_verdict_digest(v, &dg);
    CHECK_OK(bp_proposal_digest(&dep, &dg2));
    CHECK(memcmp(dg.b, dg2.b, 32) == 0);
    /* another store, a changed proposal: refused, the verdict stays usable */
    CHECK_EQ(bp_commit(s2, NULL, v, &dep, NULL, NULL), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "another store") != NULL);
    bp_proposal changed = proposal("acct:1", "+900");
    CHECK_EQ(bp_commit(s, NULL, v, &changed, NULL, NULL), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "differs") != NULL);
    changed = dep;
    changed.scope = "other";
    CHECK_EQ(bp_commit(s, NULL, v, &changed, NULL, NULL), BP_EINVAL);
    changed = dep;
    changed.kind = BP_KIND(1, 2);
    CHECK_EQ(bp_commit(s, NULL, v, &changed, NULL, NULL), BP_EINVAL);
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "k1";
    changed = dep;
    changed.opts = &o;
    CHECK_EQ(bp_commit(s, NULL, v, &changed, NULL, NULL), BP_EINVAL);
    changed = dep;
    changed.context = &bk; /* the caller context is not part of the proposal */
    CHECK(!bp_verdict_used(v));
    CHECK_EQ(count_events(s), 0);
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_commit(s, &r, v, &changed, NULL, NULL));
    CHECK(bp_verdict_used(v));
    CHECK(strcmp(r.entity, "acct:1") == 0 && strcmp(r.scope, "acct") == 0);
    CHECK_EQ(r.kind, BP_KIND(1, 1));
    CHECK_EQ(r.clock, 1);
    CHECK_EQ(r.durability, BP_DUR_SYNC);
    CHECK(!r.is_signed);
    /* single use */
    CHECK_EQ(bp_commit(s, NULL, v, &dep, NULL, NULL), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "already used") != NULL);
    CHECK_EQ(count_events(s), 1);
    bp_verdict_free(v);

    /* the gate reads the store: an overdraft is denied, a denied verdict cannot commit */
    bp_proposal wd = proposal("acct:1", "-150");
    CHECK_EQ(bp_evaluate(s, &v, gs, &wd, 0), BP_EDENIED);
    CHECK(strstr(bp_last_error(), "balance 100 would become -50") != NULL);
    CHECK_EQ(bp_commit(s, NULL, v, &wd, NULL, NULL), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "denial") != NULL);
    bp_verdict_free(v);

    /* stale: the entity moves between evaluate and commit -> conflict, nothing written */
    bp_proposal w1 = proposal("acct:1", "-80");
    CHECK_OK(bp_evaluate(s, &v, gs, &w1, 0));
    CHECK_EQ(bp_verdict_head_clock(v), 1);
    CHECK_OK(bp_append(s, NULL, "acct:1", "acct", BP_KIND(1, 1), "-80", 3));
    CHECK_EQ(bp_commit(s, NULL, v, &w1, NULL, NULL), BP_ECONFLICT);
    CHECK(strstr(bp_last_error(), "changed after the gates evaluated") != NULL);
    CHECK_EQ(count_events(s), 2);
    bp_verdict_free(v);
    /* evaluated again, the same withdrawal is now an overdraft */
    CHECK_EQ(bp_evaluate(s, &v, gs, &w1, 0), BP_EDENIED);
    bp_verdict_free(v);

    CHECK_EQ(bp_commit(s, NULL, NULL, &dep, NULL, NULL), BP_EINVAL);
    bp_gate_set_free(gs);
    CHECK_OK(bp_store_close(s));
    CHECK_OK(bp_store_close(s2));
    t_rmdir(dir);
    t_rmdir(dir2);
}

typedef struct commit_log {
    int calls;
    uint64_t expected;
    bool had_expected;
    bp_status result;
} commit_log;

static bp_status my_commit(void *ctx, bp_store *s, const bp_proposal *p,
                           const bp_append_options *opts, bp_receipt *receipt) {
    commit_log *c = ctx;
    c->calls++;
    c->had_expected = opts->has_expected_clock;
    c->expected = opts->expected_clock;
    if (c->result) return c->result;
    return bp_append_ex(s, receipt, p->entity, p->scope, p->kind, p->payload, p->len, opts);
}

static void test_commit_fn(void) {
    const char *dir = t_dir("guard-commitfn");
    bp_store *s = t_open(dir, NULL);
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs)); /* empty: allows everything */
    CHECK_OK(bp_append(s, NULL, "e", "sc", BP_KIND(1, 1), "a", 1));
    bp_proposal p = {sizeof(bp_proposal), "e", "sc", BP_KIND(1, 1), "b", 1, NULL, NULL};
    bp_verdict *v;
    CHECK_OK(bp_evaluate(s, &v, gs, &p, 0));
    commit_log c = {0, 0, false, BP_OK};
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_commit(s, &r, v, &p, my_commit, &c));
    CHECK_EQ(c.calls, 1);
    CHECK(c.had_expected);
    CHECK_EQ(c.expected, 1);
    CHECK_EQ(r.clock, 2);
    bp_verdict_free(v);
    /* a failing commit function still uses the verdict up */
    CHECK_OK(bp_evaluate(s, &v, gs, &p, 0));
    c.result = BP_EIO;
    CHECK_EQ(bp_commit(s, &r, v, &p, my_commit, &c), BP_EIO);
    CHECK(bp_verdict_used(v));
    CHECK_EQ(bp_commit(s, &r, v, &p, my_commit, &c), BP_EINVAL);
    CHECK_EQ(c.calls, 2);
    bp_verdict_free(v);
    /* the proposal's own CAS expectation is kept */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.has_expected_clock = true;
    o.expected_clock = 7;
    p.opts = &o;
    CHECK_OK(bp_evaluate(s, &v, gs, &p, 0));
    c.result = BP_OK;
    CHECK_EQ(bp_commit(s, &r, v, &p, my_commit, &c), BP_ECONFLICT);
    CHECK_EQ(c.expected, 7);
    bp_verdict_free(v);
    bp_gate_set_free(gs);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

typedef struct race {
    bp_store *s;
    bp_verdict *v;
    const bp_proposal *p;
    bp_status rc;
} race;

static void *race_commit(void *arg) {
    race *r = arg;
    r->rc = bp_commit(r->s, NULL, r->v, r->p, NULL, NULL);
    return NULL;
}

static void test_commit_race(void) {
    const char *dir = t_dir("guard-race");
    bp_store *s = t_open(dir, NULL);
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    for (int round = 0; round < 20; round++) {
        bp_proposal p = proposal("race", "+1");
        bp_verdict *v;
        CHECK_OK(bp_evaluate(s, &v, gs, &p, 0));
        race a = {s, v, &p, 99}, b = {s, v, &p, 99};
        pthread_t ta, tb;
        CHECK_EQ(pthread_create(&ta, NULL, race_commit, &a), 0);
        CHECK_EQ(pthread_create(&tb, NULL, race_commit, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        CHECK((a.rc == BP_OK) != (b.rc == BP_OK)); /* exactly one commits */
        CHECK(a.rc == BP_EINVAL || b.rc == BP_EINVAL);
        bp_verdict_free(v);
        CHECK_EQ(count_events(s), (uint64_t)round + 1);
    }
    bp_gate_set_free(gs);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ------------------------------------------------------- persisted denials */

static void test_append_denial(void) {
    const char *dir = t_dir("guard-denial");
    bp_store *s = t_open(dir, NULL);
    trace t = {"", 0};
    tgate b = {'b', BP_EDENIED, -5, &t}, d = {'d', BP_EDENIED, 77, &t};
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    CHECK_OK(bp_gate_set_add(gs, "limits", tgate_fn, &b));
    CHECK_OK(bp_gate_set_add(gs, "hours", tgate_fn, &d));
    CHECK_OK(bp_append(s, NULL, "acct:9", "acct", BP_KIND(1, 1), "+5", 2));
    bp_proposal p = proposal("acct:9", "-500");
    bp_verdict *v;
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, BP_EVAL_COLLECT_ALL), BP_EDENIED);
    bp_proposal other = proposal("acct:9", "-501");
    bp_receipt dr_event = BP_RECEIPT_INIT;
    bp_denial_receipt dr = BP_DENIAL_RECEIPT_INIT;
    dr.event = &dr_event;
    CHECK_EQ(bp_append_denial(s, &dr, v, &other), BP_EINVAL);
    CHECK_OK(bp_append_denial(s, &dr, v, &p));
    CHECK_EQ(bp_append_denial(s, &dr, v, &p), BP_EINVAL); /* persisted once */
    CHECK_EQ(dr.event->kind, BP_KIND_SYSTEM_DENIAL);
    CHECK(strcmp(dr.event->entity, "acct:9") == 0 && strcmp(dr.event->scope, "acct") == 0);
    CHECK_EQ(dr.event->clock, 2); /* in the entity chain */
    CHECK_EQ(dr.event->durability, BP_DUR_SYNC);
    CHECK_EQ(dr.denied_kind, BP_KIND(1, 1));
    CHECK_EQ(dr.n_denials, 2);
    CHECK(strcmp(dr.denial.gate, "limits") == 0 && dr.denial.code == -5);
    CHECK(strcmp(dr.denial.message, "gate b says no") == 0);
    bp_hash dg;
    bp_proposal_digest(&p, &dg);
    CHECK(memcmp(dr.proposal_digest.b, dg.b, 32) == 0);
    bp_verdict_free(v);

    /* the event: chained after the deposit, payload decodes to every denial */
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, &dr.event->event_id));
    bp_hash head;
    uint64_t clock;
    CHECK_OK(bp_entity_head(s, &clock, &head, "acct:9"));
    CHECK_EQ(clock, 2);
    CHECK(memcmp(head.b, ev->event_hash.b, 32) == 0);
    bp_denial_record rec = BP_DENIAL_RECORD_INIT;
    CHECK_OK(bp_denial_record_decode(&rec, ev->payload, ev->payload_len));
    CHECK_EQ(rec.n_denials, 2);
    CHECK_EQ(rec.denied_kind, BP_KIND(1, 1));
    CHECK(memcmp(rec.proposal_digest.b, dg.b, 32) == 0);
    CHECK(strcmp(rec.denials[1].gate, "hours") == 0 && rec.denials[1].code == 77);
    /* malformed payloads are clear errors */
    CHECK_EQ(bp_denial_record_decode(&rec, ev->payload, ev->payload_len - 1), BP_EINVAL);
    uint8_t longer[1024];
    CHECK(ev->payload_len < sizeof longer);
    memcpy(longer, ev->payload, ev->payload_len);
    longer[ev->payload_len] = 0xc0; /* a trailing nil */
    CHECK_EQ(bp_denial_record_decode(&rec, longer, ev->payload_len + 1), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "trailing") != NULL);
    CHECK_EQ(bp_denial_record_decode(&rec, "\x81\xa1v\x02", 4), BP_EINVAL);
    CHECK_EQ(bp_denial_record_decode(&rec, "\xc0", 1), BP_EINVAL);
    bp_event_free(ev);

    /* an allowed verdict is not a denial */
    b.result = d.result = BP_OK;
    CHECK_OK(bp_evaluate(s, &v, gs, &p, 0));
    CHECK_EQ(bp_append_denial(s, NULL, v, &p), BP_EINVAL);
    bp_verdict_free(v);

    bp_verify_report rep = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_EQ(rep.problems, 0);
    CHECK_OK(bp_store_close(s));
    /* survives a reopen, still chained and verifiable */
    s = t_open(dir, NULL);
    CHECK_OK(bp_store_verify(s, &rep, NULL));
    CHECK_OK(bp_entity_head(s, &clock, &head, "acct:9"));
    CHECK_EQ(clock, 2);
    CHECK_OK(bp_store_close(s));
    bp_gate_set_free(gs);
    t_rmdir(dir);
}

/* ------------------------------------------------------------- signing */

static void fixed_key(bp_signing_key *k, uint8_t fill) {
    /* a deterministic key for vectors: secret file text from a fixed seed */
    const char *dir = t_dir("guard-fixedkey");
    char path[1100], text[200];
    snprintf(path, sizeof path, "%s/k", dir);
    int n = snprintf(text, sizeof text, "batpak-ed25519-secret-key-v1\n");
    for (int i = 0; i < 32; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", fill + i);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    if (bp_signing_key_load(k, path) != BP_OK) {
        fprintf(stderr, "fixed key: %s\n", bp_last_error());
        exit(1);
    }
    t_rmdir(dir);
}

/* every field the signature covers, altered one at a time, fails verification */
static void test_signed_receipts(void) {
    const char *dir = t_dir("guard-signed");
    bp_signing_key key;
    CHECK_OK(bp_keygen(&key));
    bp_store *s = t_open(dir, &(t_open_opts){.signing_key = &key});
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "order:1", "orders", BP_KIND(2, 3), "\x01", 1));
    CHECK(r.is_signed);
    uint8_t kid[32];
    bp_key_id(kid, key.public_key);
    CHECK(memcmp(r.key_id, kid, 32) == 0);
    uint8_t sid[16];
    bp_store_uuid(s, sid);
    CHECK(memcmp(r.store_id, sid, 16) == 0);
    CHECK_OK(bp_store_verify_receipt(s, &r));
    /* offline: a keyring with the public key only */
    bp_keyring *kr;
    CHECK_OK(bp_keyring_new(&kr));
    CHECK_EQ(bp_verify_receipt(kr, &r), BP_ENOTFOUND);
    CHECK_OK(bp_keyring_add(kr, key.public_key));
    CHECK_OK(bp_keyring_add(kr, key.public_key));
    CHECK_EQ(bp_keyring_count(kr), 1);
    CHECK_OK(bp_verify_receipt(kr, &r));

    for (int field = 0; field < 14; field++) {
        bp_receipt x = r;
        bp_id id;
        switch (field) {
        case 0:
            x.event_id.b[15] ^= 1;
            break;
        case 1:
            strcpy(x.entity, "order:2");
            break;
        case 2:
            strcpy(x.scope, "orderz");
            break;
        case 3:
            x.kind ^= 1;
            break;
        case 4:
            x.global_seq++;
            break;
        case 5:
            x.clock++;
            break;
        case 6:
            x.hlc++;
            break;
        case 7:
            x.prev_hash.b[0] ^= 1;
            break;
        case 8:
            x.event_hash.b[31] ^= 0x80;
            break;
        case 9:
            x.durability = BP_DUR_NONE;
            break;
        case 10:
            x.store_id[0] ^= 1;
            break;
        case 11:
            x.signature[10] ^= 4;
            break;
        case 12:
            x.key_id[0] ^= 1;
            break;
        case 13:
            memset(id.b, 0, 16);
            x.event_id = id;
            break;
        }
        bp_status want = field == 12 ? BP_ENOTFOUND : BP_ESIGNATURE;
        CHECK_EQ(bp_verify_receipt(kr, &x), want);
        if (field == 10) {
            CHECK_EQ(bp_store_verify_receipt(s, &x), BP_EINVAL);
            CHECK(strstr(bp_last_error(), "not to this store") != NULL);
        } else {
            CHECK_EQ(bp_store_verify_receipt(s, &x), want);
        }
    }
    bp_receipt x = r;
    x.is_signed = false;
    CHECK_EQ(bp_verify_receipt(kr, &x), BP_EINVAL);
    x = r;
    x.durability = (bp_durability_mode)9;
    CHECK_EQ(bp_verify_receipt(kr, &x), BP_EINVAL);
    x = r;
    memset(x.entity, 'e', sizeof x.entity); /* not NUL-terminated */
    CHECK_EQ(bp_verify_receipt(kr, &x), BP_EINVAL);
    x = r;
    x.scope[0] = 0;
    CHECK_EQ(bp_verify_receipt(kr, &x), BP_EINVAL);

    /* batches, idempotent replays and denials are signed too */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "once";
    bp_batch_item items[2] = {{"a", "s", BP_KIND(1, 1), "1", 1, &o},
                              {"b", "s", BP_KIND(1, 1), "2", 1, NULL}};
    bp_receipt rs[2];
    t_receipts(rs, sizeof rs / sizeof rs[0]);
    CHECK_OK(bp_append_batch(s, rs, items, 2));
    CHECK_OK(bp_verify_receipt(kr, &rs[0]));
    CHECK_OK(bp_verify_receipt(kr, &rs[1]));
    bp_receipt again = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &again, "a", "s", BP_KIND(1, 1), "1", 1, &o));
    CHECK(again.replayed && again.is_signed);
    CHECK(strcmp(again.entity, "a") == 0 && again.kind == BP_KIND(1, 1));
    CHECK(memcmp(again.event_hash.b, rs[0].event_hash.b, 32) == 0);
    CHECK_EQ(again.global_seq, rs[0].global_seq);
    CHECK_OK(bp_verify_receipt(kr, &again));

    trace t = {"", 0};
    tgate g = {'g', BP_EDENIED, 3, &t};
    bp_gate_set *gs;
    CHECK_OK(bp_gate_set_new(&gs));
    CHECK_OK(bp_gate_set_add(gs, "no", tgate_fn, &g));
    bp_proposal p = proposal("acct:2", "-1");
    bp_verdict *v;
    CHECK_EQ(bp_evaluate(s, &v, gs, &p, 0), BP_EDENIED);
    bp_receipt dr_event = BP_RECEIPT_INIT;
    bp_denial_receipt dr = BP_DENIAL_RECEIPT_INIT;
    dr.event = &dr_event;
    CHECK_OK(bp_append_denial(s, &dr, v, &p));
    bp_verdict_free(v);
    bp_gate_set_free(gs);
    CHECK(dr.is_signed && dr.event->is_signed);
    CHECK_OK(bp_verify_denial_receipt(kr, &dr));
    CHECK_OK(bp_store_verify_denial_receipt(s, &dr));
    /* without its event receipt a denial receipt cannot be encoded, signed or verified */
    bp_denial_receipt no_event = dr;
    no_event.event = NULL;
    char *nj = NULL;
    CHECK_FAILS(bp_denial_receipt_to_json(&no_event, &nj), BP_EINVAL, "event");
    CHECK(nj == NULL);
    CHECK_FAILS(bp_verify_denial_receipt(kr, &no_event), BP_EINVAL, "event");
    CHECK_FAILS(bp_store_verify_denial_receipt(s, &no_event), BP_EINVAL, "event");
    for (int field = 0; field < 8; field++) {
        bp_denial_receipt y = dr;
        bp_receipt y_event = dr_event; /* a copy: the original stays good */
        y.event = &y_event;
        switch (field) {
        case 0:
            y.denied_kind ^= 1;
            break;
        case 1:
            y.proposal_digest.b[3] ^= 1;
            break;
        case 2:
            y.n_denials = 2;
            break;
        case 3:
            y.denial.gate[0] = 'N';
            break;
        case 4:
            y.denial.code = 4;
            break;
        case 5:
            y.denial.message[0] = 'G';
            break;
        case 6:
            y.signature[63] ^= 1;
            break;
        case 7:
            y.event->clock++;
            break;
        }
        CHECK_EQ(bp_verify_denial_receipt(kr, &y), BP_ESIGNATURE);
    }

    /* receipt JSON round trip, then tampering the JSON text breaks it */
    char *js;
    CHECK_OK(bp_receipt_to_json(&r, &js));
    bp_receipt_doc *doc;
    CHECK_OK(bp_receipt_from_json(&doc, js, strlen(js)));
    CHECK(bp_receipt_doc_denial(doc) == NULL);
    CHECK_OK(bp_verify_receipt(kr, bp_receipt_doc_append(doc)));
    CHECK(strcmp(bp_receipt_doc_append(doc)->entity, "order:1") == 0);
    bp_receipt_doc_free(doc);
    char *pos = strstr(js, "\"clock\":1");
    CHECK(pos != NULL);
    pos[8] = '2';
    CHECK_OK(bp_receipt_from_json(&doc, js, strlen(js)));
    CHECK_EQ(bp_verify_receipt(kr, bp_receipt_doc_append(doc)), BP_ESIGNATURE);
    bp_receipt_doc_free(doc);
    bp_free(js);
    CHECK_OK(bp_denial_receipt_to_json(&dr, &js));
    CHECK_OK(bp_receipt_from_json(&doc, js, strlen(js)));
    CHECK(bp_receipt_doc_append(doc) == NULL);
    CHECK_OK(bp_verify_denial_receipt(kr, bp_receipt_doc_denial(doc)));
    CHECK(strcmp(bp_receipt_doc_denial(doc)->denial.gate, "no") == 0);
    bp_receipt_doc_free(doc);
    bp_free(js);

    bp_keyring_free(kr);
    CHECK_OK(bp_store_close(s));
    bp_signing_key_wipe(&key);
    t_rmdir(dir);
}

static void test_rotation(void) {
    const char *dir = t_dir("guard-rotation");
    bp_signing_key k1, k2;
    CHECK_OK(bp_keygen(&k1));
    CHECK_OK(bp_keygen(&k2));
    bp_store *s = t_open(dir, &(t_open_opts){.signing_key = &k1});
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT, r0 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r1, "e", "s", BP_KIND(1, 1), "1", 1));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.signing_key = &k2});
    CHECK_OK(bp_append(s, &r2, "e", "s", BP_KIND(1, 1), "2", 1));
    CHECK(memcmp(r1.key_id, r2.key_id, 32) != 0);
    /* old receipts still verify: the old public key stays in DIR/keys/ */
    CHECK_OK(bp_store_verify_receipt(s, &r2));
    CHECK_OK(bp_store_verify_receipt(s, &r1));
    CHECK_OK(bp_store_close(s));
    /* a store opened without a key still verifies, and does not sign */
    s = t_open(dir, NULL);
    CHECK_OK(bp_store_verify_receipt(s, &r1));
    CHECK_OK(bp_store_verify_receipt(s, &r2));
    CHECK_OK(bp_append(s, &r0, "e", "s", BP_KIND(1, 1), "3", 1));
    CHECK(!r0.is_signed);
    CHECK_EQ(bp_store_verify_receipt(s, &r0), BP_EINVAL);
    /* a key added by hand joins the registry */
    bp_signing_key k3;
    CHECK_OK(bp_keygen(&k3));
    CHECK_OK(bp_store_add_public_key(s, k3.public_key));
    CHECK_OK(bp_store_close(s));
    char kd[1100];
    snprintf(kd, sizeof kd, "%s/keys", dir);
    bp_keyring *kr;
    CHECK_OK(bp_keyring_new(&kr));
    CHECK_OK(bp_keyring_add(kr, k2.public_key));
    CHECK_EQ(bp_verify_receipt(kr, &r1), BP_ENOTFOUND); /* offline ring without the old key */
    CHECK_OK(bp_verify_receipt(kr, &r2));
    bp_keyring_free(kr);
    /* three files in keys/, each named by its key id */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c '^[0-9a-f]\\{64\\}\\.pub$') = 3", kd);
    CHECK_EQ(system(cmd), 0);
    /* read-only open verifies with the registry */
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_OK(bp_store_verify_receipt(s, &r1));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void write_file(const char *path, const char *text, unsigned mode) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_key_files(void) {
    const char *dir = t_dir("guard-keyfiles");
    char sk[1100], pk[1100], other[1100];
    snprintf(sk, sizeof sk, "%s/id", dir);
    snprintf(pk, sizeof pk, "%s/id.pub", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    bp_signing_key k, l;
    CHECK_OK(bp_keygen(&k));
    CHECK_OK(bp_signing_key_save(&k, sk, pk));
    struct stat st;
    CHECK_EQ(stat(sk, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(stat(pk, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0644);
    CHECK_EQ(bp_signing_key_save(&k, sk, NULL), BP_EEXIST); /* never overwritten */
    CHECK_OK(bp_signing_key_load(&l, sk));
    CHECK(memcmp(&k, &l, sizeof k) == 0);
    uint8_t pub[32];
    CHECK_OK(bp_public_key_load(pub, pk));
    CHECK(memcmp(pub, k.public_key, 32) == 0);
    /* the wrong kind of file, either way */
    CHECK_EQ(bp_public_key_load(pub, sk), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "secret key file, not a public") != NULL);
    CHECK_EQ(bp_signing_key_load(&l, pk), BP_EINVAL);
    /* a secret key readable by others is refused */
    chmod(sk, 0644);
    CHECK_EQ(bp_signing_key_load(&l, sk), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "chmod 600") != NULL);
    chmod(sk, 0604); /* others only */
    CHECK_EQ(bp_signing_key_load(&l, sk), BP_EINVAL);
    chmod(sk, 0600);
    /* malformed */
    write_file(other, "batpak-ed25519-public-key-v1\nzz\n", 0644);
    CHECK_EQ(bp_public_key_load(pub, other), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "64 hex digits") != NULL);
    remove(other);
    write_file(other, "ssh-ed25519 AAAA\n", 0644);
    CHECK_EQ(bp_public_key_load(pub, other), BP_EINVAL);
    remove(other);
    CHECK_EQ(bp_public_key_load(pub, other), BP_ENOTFOUND);
    bp_keyring *kr;
    CHECK_OK(bp_keyring_new(&kr));
    CHECK_OK(bp_keyring_add_file(kr, pk));
    CHECK_EQ(bp_keyring_add_file(kr, other), BP_ENOTFOUND);
    CHECK_EQ(bp_keyring_count(kr), 1);
    bp_keyring_free(kr);

    /* a signing key whose halves do not match is refused at open */
    const char *sdir = t_dir("guard-badkey");
    bp_signing_key bad = k;
    bad.public_key[0] ^= 1;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.signing_key = &bad;
    bp_store *s = (bp_store *)1;
    CHECK_EQ(bp_store_open(&s, sdir, &o), BP_EINVAL);
    CHECK(s == NULL);
    /* a tampered registry is corruption, named */
    o.signing_key = &k;
    CHECK_OK(bp_store_open(&s, sdir, &o));
    CHECK_OK(bp_store_close(s));
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cp '%s/keys/'*.pub '%s/keys/%064d.pub'", sdir, sdir, 0);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(bp_store_open(&s, sdir, NULL), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "not the id its name says") != NULL);
    snprintf(cmd, sizeof cmd, "echo junk > '%s/keys/%064d.pub'", sdir, 0);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(bp_store_open(&s, sdir, NULL), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "key registry") != NULL);
    bp_signing_key_wipe(&k);
    t_rmdir(sdir);
    t_rmdir(dir);
}

/* a program built against version 1 of bp_open_options (no signing_key) still opens */
static void test_open_options_v1(void) {
    const char *dir = t_dir("guard-v1");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    bp_signing_key k;
    CHECK_OK(bp_keygen(&k));
    o.struct_size = 1;
    o.signing_key = &k; /* in a struct of an unknown size: refused, not read */
    bp_store *s;
    CHECK_FAILS(bp_store_open(&s, dir, &o), BP_EINVAL, "bp_open_options.struct_size is 1");
    o.struct_size = sizeof o;
    o.signing_key = NULL;
    CHECK_OK(bp_store_open(&s, dir, &o));
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "e", "s", BP_KIND(1, 1), "x", 1));
    CHECK(!r.is_signed);
    CHECK_OK(bp_store_close(s));
    o.struct_size = sizeof o + 1;
    CHECK_EQ(bp_store_open(&s, dir, &o), BP_EINVAL);
    t_rmdir(dir);
}

static void test_json_errors(void) {
    bp_receipt_doc *d = (bp_receipt_doc *)1;
    CHECK_EQ(bp_receipt_from_json(&d, "{", 1), BP_EINVAL);
    CHECK(d == NULL && strstr(bp_last_error(), "line 1") != NULL);
    CHECK_EQ(bp_receipt_from_json(&d, "[]", 2), BP_EINVAL);
    const char *good =
        "{\"type\":\"append_receipt\",\"version\":1,\"store_id\":\"0190f1a2-0000-7000-8000-"
        "000000000001\",\"event_id\":\"0190f1a2-0000-7000-8000-000000000002\",\"entity\":\"e\","
        "\"scope\":\"s\",\"kind\":4097,\"global_seq\":1,\"clock\":1,\"hlc\":65536,\"prev_hash\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\",\"event_hash\":"
        "\"1111111111111111111111111111111111111111111111111111111111111111\",\"durability\":"
        "\"sync\",\"replayed\":false,\"signed\":false}";
    CHECK_OK(bp_receipt_from_json(&d, good, strlen(good)));
    CHECK_EQ(bp_receipt_doc_append(d)->hlc, 65536);
    bp_receipt_doc_free(d);
    struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"kind\":4097", "\"kind\":70000", "'kind'"},
        {"\"kind\":4097,", "", "'kind' is missing"},
        {"\"version\":1", "\"version\":2", "version 2"},
        {"\"durability\":\"sync\"", "\"durability\":\"maybe\"", "'durability'"},
        {"\"prev_hash\":\"0", "\"prev_hash\":\"g", "'prev_hash'"},
        {"\"store_id\":\"0190", "\"store_id\":\"x190", "'store_id'"},
        {"\"signed\":false", "\"signed\":false,\"extra\":1", "unknown field 'extra'"},
        {"\"signed\":false", "\"signed\":true", "'key_id' is missing"},
        {"\"signed\":false", "\"signed\":false,\"signature\":\"00\"", "signed' is false"},
        {"\"clock\":1", "\"clock\":-1", "'clock'"},
        {"\"entity\":\"e\"", "\"entity\":7", "'entity'"},
        {"\"type\":\"append_receipt\"", "\"type\":\"bill\"", "'type'"},
        {"\"clock\":1", "\"clock\":1,\"clock\":2", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[2048];
        const char *at = strstr(good, cases[i].from);
        CHECK(at != NULL);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good), good, cases[i].to,
                 at + strlen(cases[i].from));
        CHECK_EQ(bp_receipt_from_json(&d, buf, strlen(buf)), BP_EINVAL);
        if (!strstr(bp_last_error(), cases[i].field)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, bp_last_error(),
                    cases[i].field);
            CHECK(0);
        }
    }
    /* an unsigned receipt parses but does not verify */
    bp_keyring *kr;
    CHECK_OK(bp_keyring_new(&kr));
    CHECK_OK(bp_receipt_from_json(&d, good, strlen(good)));
    CHECK_EQ(bp_verify_receipt(kr, bp_receipt_doc_append(d)), BP_EINVAL);
    CHECK(strstr(bp_last_error(), "not signed") != NULL);
    bp_receipt_doc_free(d);
    bp_keyring_free(kr);
}

#define VEC_APPEND_B3 "30dc499e35ffd77c1246d17ec2badcb562d112864488130c4c9204be03e68dc4"
#define VEC_APPEND_SIG                                                                             \
    "78ce42b621ca66e8deac0294551157c3148463d4151876dc4388443fa1426e07"                             \
    "6cb5ee3fa4426f7582cd1b7bf72fad9323a052cea166d30110be8a9ac2b7400e"
#define VEC_DENIAL_B3 "be65deda5e04db1e79865f31ddf0578b0980ac0ee0e39d1acd67d5126b569e8b"
#define VEC_DENIAL_SIG                                                                             \
    "8a9262520dcd7a21848e3593213f18749ab556cb34ae4838d781fee437169003"                             \
    "504085f232c7cf2e50d346bf7d7695ff8f1715108a0297a5eab0a124dad6a507"
#define VEC_DENIAL_PAYLOAD                                                                         \
    "84a17601a46b696e64cd1002a6646967657374d94066633634306332333230643464326161343334"             \
    "62363635373638383465666536656636346533653263656466313533663832343366376163366430"             \
    "3161306661a764656e69616c739183a467617465ac6e6f2d6f7665726472616674a4636f6465fea7"             \
    "6d657373616765af62616c616e6365203130203c203530"
#define VEC_PROPOSAL "fc640c2320d4d2aa434b66576884efe6ef64e3e2cedf153f8243f7ac6d01a0fa"

static int vec_bad;
/* Compare bytes (or their BLAKE3 when hash_it is NULL) with hex; print on mismatch. */
static void check_vector(const char *what, const uint8_t *p, size_t n, const char *hash_it,
                         const char *want) {
    uint8_t h[32];
    if (!hash_it) {
        bp_blake3(p, n, h);
        p = h;
        n = 32;
    }
    char *hex = malloc(2 * n + 1);
    if (!hex) exit(2);
    bp_hex_encode(p, n, hex);
    if (strcmp(hex, want) != 0) {
        fprintf(stderr, "vector %s: got %s, want %s\n", what, hex, want);
        vec_bad++;
    }
    free(hex);
}

/* doc/FORMAT.md "Signed receipts" test vectors: the encoding's BLAKE3, and the
 * Ed25519 signature (deterministic) by the key with seed 00 01 .. 1f. */
static void test_vectors(void) {
    bp_signing_key k;
    fixed_key(&k, 0);
    char hex[200];
    uint8_t kid[32];
    bp_key_id(kid, k.public_key);
    bp_hash h;
    memcpy(h.b, k.public_key, 32);
    bp_hash_format(&h, hex);
    CHECK(strcmp(hex, "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8") == 0);
    bp_receipt r = BP_RECEIPT_INIT;
    for (int i = 0; i < 16; i++) {
        r.store_id[i] = (uint8_t)(0xA0 + i);
        r.event_id.b[i] = (uint8_t)i;
    }
    strcpy(r.entity, "acct:1");
    strcpy(r.scope, "bank");
    r.kind = 0x1001;
    r.global_seq = 7;
    r.clock = 3;
    r.hlc = ((uint64_t)1700000000000 << 16) | 2;
    memset(r.prev_hash.b, 0x11, 32);
    memset(r.event_hash.b, 0x22, 32);
    r.durability = BP_DUR_SYNC;
    memcpy(r.key_id, kid, 32);
    uint8_t buf[BP_RECEIPT_SIGNING_MAX];
    size_t len;
    CHECK_OK(bp_receipt_signing_bytes(&r, buf, sizeof buf, &len));
    CHECK_EQ(len, 1 + 24 + 16 + 16 + 2 + 6 + 2 + 4 + 2 + 8 + 8 + 8 + 32 + 32 + 1 + 32);
    CHECK(memcmp(buf,
                 "\x18"
                 "batpak/append-receipt/v1",
                 25) == 0);
    /* the same bytes built from doc/FORMAT.md's table, not from the code */
    uint8_t doc[194], *q = doc;
    *q++ = 24;
    memcpy(q, "batpak/append-receipt/v1", 24), q += 24;
    for (int i = 0; i < 16; i++)
        *q++ = (uint8_t)(0xA0 + i);
    for (int i = 0; i < 16; i++)
        *q++ = (uint8_t)i;
    memcpy(q, "\0\6acct:1\0\4bank\x10\x01", 16), q += 16;
    memcpy(q, "\0\0\0\0\0\0\0\7\0\0\0\0\0\0\0\3", 16), q += 16;
    uint64_t hv = r.hlc;
    for (int i = 7; i >= 0; i--)
        q[i] = (uint8_t)hv, hv >>= 8;
    q += 8;
    memset(q, 0x11, 32), q += 32;
    memset(q, 0x22, 32), q += 32;
    *q++ = 1;
    memcpy(q, kid, 32), q += 32;
    CHECK_EQ(q - doc, (long)sizeof doc);
    CHECK(len == sizeof doc && memcmp(buf, doc, sizeof doc) == 0);
    CHECK_EQ(bp_receipt_signing_bytes(&r, buf, 10, &len), BP_ETOOBIG);
    CHECK_EQ(len, sizeof doc); /* the size needed */
    bp_signer sg;
    memcpy(sg.pk, k.public_key, 32);
    memcpy(sg.sk, k.secret_key, 64);
    memcpy(sg.key_id, kid, 32);
    bp_sign_receipt(&sg, &r);
    check_vector("append encoding blake3", buf, len, NULL, VEC_APPEND_B3);
    check_vector("append signature", r.signature, 64, "", VEC_APPEND_SIG);
    bp_keyring *kr;
    CHECK_OK(bp_keyring_new(&kr));
    CHECK_OK(bp_keyring_add(kr, k.public_key));
    CHECK_OK(bp_verify_receipt(kr, &r));

    /* denial receipt over the same event */
    bp_receipt d_event = r;
    bp_denial_receipt d = BP_DENIAL_RECEIPT_INIT;
    d.event = &d_event;
    d.denied_kind = 0x1002;
    memset(d.proposal_digest.b, 0x33, 32);
    d.n_denials = 1;
    strcpy(d.denial.gate, "no-overdraft");
    d.denial.code = -2;
    strcpy(d.denial.message, "balance 10 < 50");
    bp_sign_denial(&sg, &d);
    CHECK_OK(bp_denial_signing_bytes(&d, buf, sizeof buf, &len));
    CHECK(memcmp(buf,
                 "\x18"
                 "batpak/denial-receipt/v1",
                 25) == 0);
    check_vector("denial encoding blake3", buf, len, NULL, VEC_DENIAL_B3);
    check_vector("denial signature", d.signature, 64, "", VEC_DENIAL_SIG);
    CHECK_OK(bp_verify_denial_receipt(kr, &d));

    /* proposal digest */
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.idempotency_key = "req-1";
    bp_proposal p = {sizeof(bp_proposal), "acct:1", "bank", 0x1001, "\x92\x01\x02", 3, &o, NULL};
    bp_hash pd;
    CHECK_OK(bp_proposal_digest(&p, &pd));
    check_vector("proposal digest", pd.b, 32, "", VEC_PROPOSAL);
    /* the SYSTEM_DENIAL payload of one denial */
    bp_buf b = {0};
    CHECK_EQ(bp_denial_payload_encode(&b, 0x1002, &pd, &d.denial, 1), 0);
    check_vector("denial payload", b.data, b.len, "", VEC_DENIAL_PAYLOAD);
    bp_denial_record rec = BP_DENIAL_RECORD_INIT;
    CHECK_OK(bp_denial_record_decode(&rec, b.data, b.len));
    CHECK(rec.n_denials == 1 && rec.denials[0].code == -2 && rec.denied_kind == 0x1002);
    bp_buf_free(&b);
    /* codes of every integer width, negative ones sign-extended */
    const int32_t codes[] = {-1, -33, -200, -70000, INT32_MIN, 127, 300, 70000, INT32_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        bp_denial dn = d.denial;
        dn.code = codes[i];
        bp_buf cb = {0};
        CHECK_EQ(bp_denial_payload_encode(&cb, 0x1002, &pd, &dn, 1), 0);
        CHECK_OK(bp_denial_record_decode(&rec, cb.data, cb.len));
        CHECK_EQ(rec.denials[0].code, codes[i]);
        bp_buf_free(&cb);
    }
    sodium_memzero(&sg, sizeof sg);
    bp_keyring_free(kr);
    bp_signing_key_wipe(&k);
}

static void vectors_ok(void) {
    CHECK_EQ(vec_bad, 0);
}
#define CHECK_VECTORS_DONE() RUN(vectors_ok)

int main(void) {
    RUN(test_gate_sets);
    RUN(test_fail_fast_and_collect_all);
    RUN(test_commit_rules);
    RUN(test_commit_fn);
    RUN(test_commit_race);
    RUN(test_append_denial);
    RUN(test_signed_receipts);
    RUN(test_rotation);
    RUN(test_key_files);
    RUN(test_open_options_v1);
    RUN(test_json_errors);
    RUN(test_vectors);
    CHECK_VECTORS_DONE();
    T_DONE();
}
