/*
 * guard.c — gates, gate sets, evaluate -> commit, persisted denials (batpak/guard.h).
 *
 * Invariants:
 *  - a verdict is allowed iff it holds no denial;
 *  - v->used goes from false to true once (atomic exchange), by the bp_commit or
 *    bp_append_denial that consumes it; nothing runs for a verdict already used;
 *  - v->digest is bp_proposal_digest of the proposal the gates saw.
 */
#include "guard/guard_impl.h"

#include <blake3.h>
#include <stdio.h>
#include <stdlib.h>

#define PROPOSAL_DOMAIN "batpak/proposal/v1"

typedef struct gate {
    char name[BP_GATE_NAME_MAX + 1];
    bp_gate_fn fn;
    void *data;
} gate;

struct bp_gate_set {
    gate g[BP_GATES_MAX];
    size_t n;
};

struct bp_verdict {
    const bp_store *store;
    bool allowed;
    bool used; /* atomic */
    bp_hash digest;
    uint64_t head_clock;
    size_t gates_run;
    size_t n_denials;
    bp_denial denials[]; /* room for one per gate of the evaluated set */
};

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) return;
    n = max;
    while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = '\0';
}

bp_status bp_deny(bp_denial *deny, int32_t code, const char *fmt, ...) {
    if (!deny) return BP_EDENIED;
    deny->code = code;
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    cut_utf8(msg, BP_DENIAL_MESSAGE_MAX);
    memcpy(deny->message, msg, strlen(msg) + 1);
    return BP_EDENIED;
}

/* ------------------------------------------------------------- gate sets */

bp_status bp_gate_set_new(bp_gate_set **out) {
    if (!out) return bp_err(BP_EINVAL, "gate set: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? BP_OK : bp_err(BP_ENOMEM, "gate set: out of memory");
}

bp_status bp_gate_set_add(bp_gate_set *gs, const char *name, bp_gate_fn fn, void *ctx) {
    if (!gs || !name || !fn) return bp_err(BP_EINVAL, "gate set add: NULL argument");
    size_t nl = strnlen(name, BP_GATE_NAME_MAX + 1);
    if (nl == 0 || nl > BP_GATE_NAME_MAX)
        return bp_err(BP_EINVAL, "gate name must be 1..%d bytes", BP_GATE_NAME_MAX);
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->g[i].name, name) == 0)
            return bp_err(BP_EEXIST, "gate set already has a gate named '%s'", name);
    if (gs->n == BP_GATES_MAX)
        return bp_err(BP_ETOOBIG, "gate set is full (%d gates); cannot add '%s'", BP_GATES_MAX,
                      name);
    gate *g = &gs->g[gs->n++];
    memcpy(g->name, name, nl + 1);
    g->fn = fn;
    g->data = ctx;
    return BP_OK;
}

size_t bp_gate_set_count(const bp_gate_set *gs) {
    return gs ? gs->n : 0;
}

void bp_gate_set_free(bp_gate_set *gs) {
    free(gs);
}

/* ------------------------------------------------------------- digest */

static void hash_u8(blake3_hasher *h, uint8_t v) {
    blake3_hasher_update(h, &v, 1);
}
static void hash16(blake3_hasher *h, uint16_t v) {
    uint8_t b[2];
    bp_put_be16(b, v);
    blake3_hasher_update(h, b, 2);
}
static void hash_str16(blake3_hasher *h, const char *s) {
    size_t n = s ? strlen(s) : 0;
    hash16(h, (uint16_t)n);
    if (n) blake3_hasher_update(h, s, n);
}

bp_status bp_proposal_digest(const bp_proposal *p, bp_hash *out) {
    if (!p || !out) return bp_err(BP_EINVAL, "proposal digest: NULL argument");
    BP_SIZE_CHECK("proposal", p, bp_proposal, BP_PROPOSAL_INIT);
    if (!p->entity || !p->scope) return bp_err(BP_EINVAL, "proposal: entity or scope is NULL");
    if (p->len && !p->payload) return bp_err(BP_EINVAL, "proposal: payload is NULL");
    if (strnlen(p->entity, BP_COORD_MAX + 1) > BP_COORD_MAX ||
        strnlen(p->scope, BP_COORD_MAX + 1) > BP_COORD_MAX || p->len > UINT32_MAX)
        return bp_err(BP_EINVAL, "proposal: entity, scope or payload too long");
    const bp_append_options *o = p->opts;
    const char *idem = o ? o->idempotency_key : NULL;
    if (idem && strnlen(idem, BP_IDEMPOTENCY_KEY_MAX + 1) > BP_IDEMPOTENCY_KEY_MAX)
        return bp_err(BP_EINVAL, "proposal: idempotency key too long");
    blake3_hasher h;
    blake3_hasher_init(&h);
    hash_u8(&h, (uint8_t)strlen(PROPOSAL_DOMAIN));
    blake3_hasher_update(&h, PROPOSAL_DOMAIN, strlen(PROPOSAL_DOMAIN));
    hash_str16(&h, p->entity);
    hash_str16(&h, p->scope);
    hash16(&h, p->kind);
    uint8_t b[8];
    bp_put_be32(b, (uint32_t)p->len);
    blake3_hasher_update(&h, b, 4);
    if (p->len) blake3_hasher_update(&h, p->payload, p->len);
    uint8_t schema = o ? o->schema_version : 0;
    uint8_t flags = (uint8_t)((o && o->has_expected_clock ? 1 : 0) | (idem ? 2 : 0) |
                              (o && o->correlation_id ? 4 : 0) | (o && o->causation_id ? 8 : 0) |
                              (schema ? 16 : 0));
    hash_u8(&h, flags);
    bp_put_be64(b, o && o->has_expected_clock ? o->expected_clock : 0);
    blake3_hasher_update(&h, b, 8);
    hash_str16(&h, idem);
    static const uint8_t zero[16];
    blake3_hasher_update(&h, o && o->correlation_id ? o->correlation_id->b : zero, 16);
    blake3_hasher_update(&h, o && o->causation_id ? o->causation_id->b : zero, 16);
    if (schema) hash_u8(&h, schema); /* absent when 0: digests of earlier proposals stand */
    blake3_hasher_finalize(&h, out->b, 32);
    return BP_OK;
}

/* ------------------------------------------------------------ evaluate */

bp_status bp_evaluate(bp_store *s, bp_verdict **out, const bp_gate_set *gs, const bp_proposal *p,
                      unsigned mode) {
    if (!out) return bp_err(BP_EINVAL, "evaluate: out is NULL");
    *out = NULL;
    if (!s || !gs || !p) return bp_err(BP_EINVAL, "evaluate: NULL store, gate set or proposal");
    if (mode != BP_EVAL_FAIL_FAST && mode != BP_EVAL_COLLECT_ALL)
        return bp_err(BP_EINVAL, "evaluate: unknown mode %u (BP_EVAL_FAIL_FAST or COLLECT_ALL)",
                      mode);
    bp_batch_item it = {p->entity, p->scope, p->kind, p->payload, p->len, p->opts};
    bp_status rc = bp_validate_item(s, &it, false, 0, false);
    if (rc) return rc;
    bp_verdict *v = calloc(1, sizeof *v + gs->n * sizeof(bp_denial));
    if (!v) return bp_err(BP_ENOMEM, "evaluate: out of memory");
    v->store = s;
    if ((rc = bp_proposal_digest(p, &v->digest)) ||
        (rc = bp_entity_head(s, &v->head_clock, NULL, p->entity))) {
        free(v);
        return rc;
    }
    for (size_t i = 0; i < gs->n; i++) {
        const gate *g = &gs->g[i];
        bp_denial *d = &v->denials[v->n_denials];
        memset(d, 0, sizeof *d);
        bp_err_clear();
        rc = g->fn(g->data, s, p, d);
        v->gates_run++;
        if (rc == BP_OK) continue;
        if (rc == BP_EDENIED) {
            memcpy(d->gate, g->name, sizeof d->gate);
            d->message[BP_DENIAL_MESSAGE_MAX] = '\0';
            cut_utf8(d->message, BP_DENIAL_MESSAGE_MAX);
            v->n_denials++;
            if (mode == BP_EVAL_FAIL_FAST) break;
            continue;
        }
        char why[512];
        snprintf(why, sizeof why, "%s", bp_last_error()[0] ? bp_last_error() : bp_strerror(rc));
        free(v);
        if (rc > 0)
            return bp_err(BP_EINVAL, "gate '%s' returned %d, which is neither BP_OK nor BP_EDENIED",
                          g->name, (int)rc);
        return bp_err(rc, "gate '%s' failed: %s", g->name, why);
    }
    v->allowed = v->n_denials == 0;
    *out = v;
    if (v->allowed) return BP_OK;
    const bp_denial *d = &v->denials[0];
    return bp_err(BP_EDENIED, "denied by gate '%s' (code %d): %s%s", d->gate, (int)d->code,
                  d->message, v->n_denials > 1 ? " (and more)" : "");
}

bool bp_verdict_allowed(const bp_verdict *v) {
    return v && v->allowed;
}
size_t bp_verdict_denials(const bp_verdict *v, const bp_denial **out) {
    if (out) *out = v && v->n_denials ? v->denials : NULL;
    return v ? v->n_denials : 0;
}
size_t bp_verdict_gates_run(const bp_verdict *v) {
    return v ? v->gates_run : 0;
}
void bp_verdict_digest(const bp_verdict *v, bp_hash *out) {
    if (v && out) *out = v->digest;
}
uint64_t bp_verdict_head_clock(const bp_verdict *v) {
    return v ? v->head_clock : 0;
}
bool bp_verdict_used(const bp_verdict *v) {
    return v && __atomic_load_n(&v->used, __ATOMIC_ACQUIRE);
}
void bp_verdict_free(bp_verdict *v) {
    free(v);
}

/* ------------------------------------------------------- commit and deny */

/* The checks bp_commit and bp_append_denial share; on BP_OK the verdict is now used. */
static bp_status take_verdict(const char *what, bp_store *s, bp_verdict *v, const bp_proposal *p,
                              bool want_allowed) {
    if (!s || !v || !p) return bp_err(BP_EINVAL, "%s: NULL store, verdict or proposal", what);
    if (v->allowed != want_allowed)
        return want_allowed ? bp_err(BP_EINVAL,
                                     "%s: the verdict is a denial; a denied proposal cannot be "
                                     "committed (bp_append_denial records it)",
                                     what)
                            : bp_err(BP_EINVAL, "%s: the verdict allowed the proposal", what);
    if (v->store != s) return bp_err(BP_EINVAL, "%s: the verdict is for another store", what);
    bp_hash d;
    bp_status rc = bp_proposal_digest(p, &d);
    if (rc) return rc;
    if (memcmp(d.b, v->digest.b, 32) != 0) {
        char a[65], b[65];
        bp_hash_format(&v->digest, a);
        bp_hash_format(&d, b);
        return bp_err(BP_EINVAL,
                      "%s: the proposal differs from the one the gates evaluated (digest %.16s... "
                      "then, %.16s... now); evaluate it first",
                      what, a, b);
    }
    if (__atomic_exchange_n(&v->used, true, __ATOMIC_ACQ_REL))
        return bp_err(BP_EINVAL, "%s: the verdict was already used; a receipt is good for one %s",
                      what, want_allowed ? "commit" : "denial record");
    return BP_OK;
}

bp_status bp_commit(bp_store *s, bp_receipt *receipt, bp_verdict *v, const bp_proposal *p,
                    bp_commit_fn fn, void *ctx) {
    bp_status rc = take_verdict("commit", s, v, p, true);
    if (rc) return rc;
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    if (p->opts) o = *p->opts;
    bool bound = !o.has_expected_clock;
    if (bound) {
        o.has_expected_clock = true;
        o.expected_clock = v->head_clock;
    }
    if (fn)
        rc = fn(ctx, s, p, &o, receipt);
    else
        rc = bp_append_ex(s, receipt, p->entity, p->scope, p->kind, p->payload, p->len, &o);
    if (rc == BP_ECONFLICT && bound) {
        char why[512];
        snprintf(why, sizeof why, "%s", bp_last_error());
        return bp_err(BP_ECONFLICT,
                      "commit: entity '%s' changed after the gates evaluated it (head clock %llu "
                      "then); evaluate again. %s",
                      p->entity, (unsigned long long)v->head_clock, why);
    }
    return rc;
}

bp_status bp_append_denial(bp_store *s, bp_denial_receipt *out, bp_verdict *v,
                           const bp_proposal *p) {
    if (out) {
        BP_SIZE_CHECK("bp_append_denial", out, bp_denial_receipt, BP_DENIAL_RECEIPT_INIT);
        if (out->event)
            BP_SIZE_CHECK("bp_append_denial: event", out->event, bp_receipt, BP_RECEIPT_INIT);
    }
    bp_status rc = take_verdict("append_denial", s, v, p, false);
    if (rc) return rc;
    bp_buf b = {0};
    if (bp_denial_payload_encode(&b, p->kind, &v->digest, v->denials, v->n_denials)) {
        bp_buf_free(&b);
        return bp_err(BP_ENOMEM, "append_denial: out of memory");
    }
    bp_receipt ev = BP_RECEIPT_INIT;
    bp_denial_receipt r = BP_DENIAL_RECEIPT_INIT;
    r.event = &ev;
    rc = bp_append_system(s, &ev, p->entity, p->scope, BP_KIND_SYSTEM_DENIAL, b.data, b.len,
                          BP_DURABLE);
    bp_buf_free(&b);
    if (rc) return rc;
    r.denied_kind = p->kind;
    r.proposal_digest = v->digest;
    r.n_denials = (uint32_t)v->n_denials;
    r.denial = v->denials[0];
    const bp_signer *sg = bp_guard_of(s)->signer;
    if (sg) bp_sign_denial(sg, &r);
    if (out) {
        r.event = out->event;
        if (r.event) *r.event = ev;
        *out = r;
    }
    return BP_OK;
}
