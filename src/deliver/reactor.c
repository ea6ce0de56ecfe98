/*
 * Reactors: cursor workers whose handler collects reactions; each trigger's
 * reactions are appended as one atomic batch with causation, correlation and
 * an idempotency key per (worker, trigger, index), so that a trigger delivered
 * again after a crash appends nothing new.
 */
#include "deliver/deliver_impl.h"
#include "typed/typed_impl.h"

#include <stdio.h>
#include <stdlib.h>

bp_status bp_append_reaction(bp_store *s, bp_receipt *receipt, const bp_event *trigger,
                             const char *entity, const char *scope, uint16_t kind,
                             const void *payload, size_t len, const bp_append_options *opts) {
    if (!trigger) return bp_err(BP_EINVAL, "bp_append_reaction: trigger is NULL");
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    if (opts) {
        BP_SIZE_CHECK("bp_append_reaction", opts, bp_append_options, BP_APPEND_OPTIONS_INIT);
        o = *opts;
    }
    o.causation_id = &trigger->event_id;
    o.correlation_id = &trigger->correlation_id;
    return bp_append_ex(s, receipt, entity, scope, kind, payload, len, &o);
}

/* One trigger's reactions: items point into data (entity, scope, payload) once complete. */
struct bp_reactions {
    size_t n;
    struct {
        size_t entity, scope, payload, len;
        uint16_t kind;
        uint8_t schema;
    } r[BP_REACTIONS_MAX];
    bp_buf data;
};

static bp_status add(bp_reactions *out, const char *entity, const char *scope, uint16_t kind,
                     const void *payload, size_t len, uint8_t schema) {
    if (!out) return bp_err(BP_EINVAL, "bp_react: NULL reactions");
    if (out->n == BP_REACTIONS_MAX)
        return bp_err(BP_ETOOBIG, "bp_react: more than %d reactions to one trigger",
                      BP_REACTIONS_MAX);
    if (!entity || !scope || (len && !payload)) return bp_err(BP_EINVAL, "bp_react: NULL argument");
    size_t el = strnlen(entity, BP_COORD_MAX + 1) + 1, sl = strnlen(scope, BP_COORD_MAX + 1) + 1;
    if (el > BP_COORD_MAX + 1 || sl > BP_COORD_MAX + 1)
        return bp_err(BP_EINVAL, "bp_react: entity or scope longer than %d bytes", BP_COORD_MAX);
    if (len > BP_MAX_PAYLOAD)
        return bp_err(BP_ETOOBIG, "bp_react: payload of %zu bytes too big", len);
    size_t at = out->data.len;
    if (bp_buf_append(&out->data, entity, el) || bp_buf_append(&out->data, scope, sl) ||
        (len && bp_buf_append(&out->data, payload, len)))
        return bp_err(BP_ENOMEM, "bp_react: out of memory");
    out->r[out->n].entity = at;
    out->r[out->n].scope = at + el;
    out->r[out->n].payload = at + el + sl;
    out->r[out->n].len = len;
    out->r[out->n].kind = kind;
    out->r[out->n].schema = schema;
    out->n++;
    return BP_OK;
}

bp_status bp_react(bp_reactions *out, const char *entity, const char *scope, uint16_t kind,
                   const void *payload, size_t len) {
    return add(out, entity, scope, kind, payload, len, 0);
}

bp_status bp_react_typed(bp_reactions *out, const char *entity, const char *scope,
                         const bp_type *type, const void *value) {
    size_t max = bp_type_encoded_max(type);
    if (!max) return bp_type_check(type);
    uint8_t *buf = malloc(max);
    if (!buf) return bp_err(BP_ENOMEM, "bp_react_typed: out of memory");
    size_t len;
    bp_status rc = bp_type_encode(type, buf, max, &len, value);
    if (!rc) rc = add(out, entity, scope, type->kind, buf, len, type->version);
    free(buf);
    return rc;
}

typedef struct reactor {
    bp_store *s;
    const bp_type *type;
    bp_reactor_fn fn;
    void *ctx;
    bp_reactions rx;
    void *value; /* type->size bytes, or NULL */
} reactor;

static bp_status react(void *arg, const bp_delivery *d) {
    reactor *r = arg;
    r->rx.n = 0;
    r->rx.data.len = 0;
    const void *value = NULL;
    bp_status rc;
    if (r->type && d->ev->kind == r->type->kind) {
        if ((rc = bp_event_decode_checked(r->s, d->ev, r->type, r->value))) return rc;
        value = r->value;
    }
    if ((rc = r->fn(r->ctx, d, value, &r->rx))) return rc;
    size_t n = r->rx.n;
    if (n == 0) return BP_OK;
    bp_batch_item *items = calloc(n, sizeof *items);
    bp_append_options *opts = calloc(n, sizeof *opts);
    char(*keys)[160] = calloc(n, sizeof *keys);
    if (!items || !opts || !keys) {
        rc = bp_err(BP_ENOMEM, "reactor: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *base = r->rx.data.data;
        snprintf(keys[i], sizeof keys[i], "%s:%zu", d->idem_key, i);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.causation_id = &d->ev->event_id;
        o.correlation_id = &d->ev->correlation_id;
        o.idempotency_key = keys[i];
        o.schema_version = r->rx.r[i].schema;
        opts[i] = o;
        items[i] = (bp_batch_item){(const char *)base + r->rx.r[i].entity,
                                   (const char *)base + r->rx.r[i].scope,
                                   r->rx.r[i].kind,
                                   base + r->rx.r[i].payload,
                                   r->rx.r[i].len,
                                   &opts[i]};
    }
    /* atomic and durable; every key committed already (a redelivery): nothing is written */
    rc = bp_append_batch(r->s, NULL, items, n);
out:
    free(items);
    free(opts);
    free(keys);
    return rc;
}

static void reactor_free(void *arg) {
    reactor *r = arg;
    bp_buf_free(&r->rx.data);
    free(r->value);
    free(r);
}

bp_status bp_reactor(bp_store *s, bp_worker **out, const bp_region *region, const bp_type *type,
                     bp_reactor_fn fn, void *ctx, const bp_worker_config *cfg) {
    if (!out) return bp_err(BP_EINVAL, "bp_reactor: out is NULL");
    *out = NULL;
    if (!s || !fn) return bp_err(BP_EINVAL, "bp_reactor: NULL argument");
    if (bp_store_read_only(s))
        return bp_err(BP_EREADONLY, "%s: a reactor needs a writable store", bp_store_dir(s));
    bp_status rc;
    if (type && (rc = bp_type_check(type))) return rc;
    reactor *r = calloc(1, sizeof *r);
    if (!r || (type && !(r->value = malloc(type->size)))) {
        free(r);
        return bp_err(BP_ENOMEM, "bp_reactor: out of memory");
    }
    r->s = s;
    r->type = type;
    r->fn = fn;
    r->ctx = ctx;
    rc = bp_worker_start(s, region, react, r, reactor_free, cfg, out);
    if (rc) reactor_free(r);
    return rc;
}
