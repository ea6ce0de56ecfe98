/*
 * gates_and_receipts: a bank-like domain guarded by two gates.
 *
 *   no-overdraft  reads the account's stream and denies a withdrawal it cannot cover
 *   rate-limit    denies a fourth withdrawal from one account within a minute
 *
 * Every proposal goes evaluate -> commit; a denial is persisted as a SYSTEM_DENIAL event in
 * the account's chain. The store signs every receipt (the key is made on the first run and
 * kept in DIR-keys/); the last receipt is exported as JSON and verified offline with the
 * public key alone, as `batpak verify-receipt FILE --pubkey KEY.pub` would.
 *
 * Payloads are 8-byte big-endian signed amounts (deposits > 0, withdrawals < 0) to keep the
 * example free of a MessagePack library. Re-runnable: each run uses a new account.
 */
#include <batpak/batpak.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define KIND_DEPOSIT BP_KIND(1, 1)
#define KIND_WITHDRAW BP_KIND(1, 2)
#define RATE_LIMIT 3
#define RATE_WINDOW_MS 60000

static int64_t amount_of(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static void amount_bytes(int64_t a, uint8_t out[8]) {
    for (int i = 7; i >= 0; i--, a >>= 8)
        out[i] = (uint8_t)(a & 0xFF);
}

/* gate: the balance (a projection of the stream) must cover the withdrawal */
static bp_status no_overdraft(void *data, bp_store *s, const bp_proposal *p, bp_denial *deny) {
    (void)data;
    int64_t want = amount_of(p->payload, p->len), balance = 0;
    if (want >= 0) return BP_OK;
    bp_iter *it;
    const bp_event *ev;
    bp_status rc = bp_stream(s, &it, p->entity, BP_READ_FULL);
    if (rc) return rc;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK)
        if (ev->kind == KIND_DEPOSIT || ev->kind == KIND_WITHDRAW)
            balance += amount_of(ev->payload, ev->payload_len);
    bp_iter_free(it);
    if (rc != BP_DONE) return rc;
    if (balance + want < 0)
        return bp_deny(deny, 1, "balance %lld cannot cover %lld", (long long)balance,
                       (long long)-want);
    return BP_OK;
}

/* gate: at most RATE_LIMIT withdrawals per account in RATE_WINDOW_MS (index only, no I/O) */
static bp_status rate_limit(void *data, bp_store *s, const bp_proposal *p, bp_denial *deny) {
    const uint64_t *now_ms = data;
    if (p->kind != KIND_WITHDRAW) return BP_OK;
    bp_iter *it;
    const bp_event *ev;
    int recent = 0;
    bp_status rc = bp_stream(s, &it, p->entity, BP_READ_INDEX_ONLY);
    if (rc) return rc;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK)
        if (ev->kind == KIND_WITHDRAW && BP_HLC_WALL_MS(ev->hlc) + RATE_WINDOW_MS > *now_ms)
            recent++;
    bp_iter_free(it);
    if (rc != BP_DONE) return rc;
    if (recent >= RATE_LIMIT)
        return bp_deny(deny, 2, "%d withdrawals in the last minute (limit %d)", recent, RATE_LIMIT);
    return BP_OK;
}

/* evaluate -> commit, or persist the denial. 0 ok (either way), 1 on an error. */
static int propose(bp_store *s, const bp_gate_set *gates, const char *acct, int64_t amount,
                   bp_receipt *last) {
    uint8_t pay[8];
    amount_bytes(amount, pay);
    bp_proposal p = {sizeof(bp_proposal),
                     acct,
                     "bank",
                     amount < 0 ? KIND_WITHDRAW : KIND_DEPOSIT,
                     pay,
                     8,
                     NULL,
                     NULL};
    bp_verdict *v;
    bp_status rc = bp_evaluate(s, &v, gates, &p, BP_EVAL_FAIL_FAST);
    if (rc == BP_OK) {
        rc = bp_commit(s, last, v, &p, NULL, NULL); /* NULL: the default commit, an append */
        if (!rc)
            printf("%+6lld  committed at clock %llu (receipt signed: %s)\n", (long long)amount,
                   (unsigned long long)last->clock, last->is_signed ? "yes" : "no");
    } else if (rc == BP_EDENIED) {
        const bp_denial *d;
        bp_verdict_denials(v, &d);
        bp_receipt dr_event = BP_RECEIPT_INIT;
        bp_denial_receipt dr = BP_DENIAL_RECEIPT_INIT;
        dr.event = &dr_event;
        rc = bp_append_denial(s, &dr, v, &p);
        if (!rc)
            printf("%+6lld  denied by %s (code %d): %s; recorded at clock %llu\n",
                   (long long)amount, d->gate, d->code, d->message,
                   (unsigned long long)dr.event->clock);
    }
    bp_verdict_free(v);
    if (rc) fprintf(stderr, "%s\n", bp_last_error());
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./gates-data";
    char keydir[1024], sk[1100], pk[1100], rfile[1100];
    snprintf(keydir, sizeof keydir, "%s-keys", dir);
    snprintf(sk, sizeof sk, "%s/signing.key", keydir);
    snprintf(pk, sizeof pk, "%s/signing.pub", keydir);
    snprintf(rfile, sizeof rfile, "%s/last-receipt.json", keydir);
    mkdir(keydir, 0700);
    bp_signing_key key;
    if (bp_signing_key_load(&key, sk) == BP_ENOTFOUND &&
        (bp_keygen(&key) || bp_signing_key_save(&key, sk, pk))) {
        fprintf(stderr, "key: %s\n", bp_last_error());
        return 1;
    }
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.signing_key = &key;
    bp_store *s;
    bp_status rc = bp_store_open(&s, dir, &o);
    bp_signing_key_wipe(&key);
    if (rc) {
        fprintf(stderr, "open: %s\n", bp_last_error());
        return 1;
    }
    bp_store_stats st = BP_STORE_STATS_INIT;
    char acct[64];
    uint64_t now_ms = (uint64_t)time(NULL) * 1000;
    bp_gate_set *gates = NULL;
    if (bp_store_stats_get(s, &st) || bp_gate_set_new(&gates) ||
        bp_gate_set_add(gates, "no-overdraft", no_overdraft, NULL) ||
        bp_gate_set_add(gates, "rate-limit", rate_limit, &now_ms)) {
        fprintf(stderr, "setup: %s\n", bp_last_error());
        bp_gate_set_free(gates);
        bp_store_close(s);
        return 1;
    }
    snprintf(acct, sizeof acct, "acct:%llu", (unsigned long long)st.events); /* new each run */

    printf("account %s\n", acct);
    const int64_t steps[] = {100, -30, -500, -10, -10, -10};
    bp_receipt last = BP_RECEIPT_INIT;
    int bad = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !bad; i++)
        bad = propose(s, gates, acct, steps[i], &last);
    bp_gate_set_free(gates);

    /* export the last signed receipt, then verify it offline with the public key only */
    char *json = NULL;
    bp_receipt_doc *doc = NULL;
    bp_keyring *ring = NULL;
    FILE *f = NULL;
    if (!bad &&
        (bp_receipt_to_json(&last, &json) || !(f = fopen(rfile, "w")) ||
         fprintf(f, "%s\n", json) < 0 || fclose(f) ||
         bp_receipt_from_json(&doc, json, strlen(json)) || bp_keyring_new(&ring) ||
         bp_keyring_add_file(ring, pk) || bp_verify_receipt(ring, bp_receipt_doc_append(doc)))) {
        fprintf(stderr, "receipt: %s\n", bp_last_error());
        bad = 1;
    }
    if (!bad)
        printf("receipt written to %s and verified offline with %s\n"
               "  (the same check: batpak verify-receipt %s --pubkey %s)\n",
               rfile, pk, rfile, pk);
    bp_keyring_free(ring);
    bp_receipt_doc_free(doc);
    bp_free(json);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    if (!bad && bp_store_verify(s, &vr, NULL) != BP_OK) {
        fprintf(stderr, "verify: %s\n", vr.first_problem);
        bad = 1;
    }
    if (bp_store_close(s) != BP_OK) bad = 1;
    return bad;
}
