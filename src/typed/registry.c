/*
 * The per-store registry of payload types and upcasters, typed appends and
 * typed reads.
 */
#include "typed/typed_impl.h"

#include <stdio.h>
#include <stdlib.h>

bp_status bp_registry_new(bp_registry **out) {
    bp_registry *r = calloc(1, sizeof *r);
    if (!r) return bp_err(BP_ENOMEM, "registry: out of memory");
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return BP_OK;
}

void bp_registry_free(bp_registry *r) {
    if (!r) return;
    for (bp_kindreg *k = r->all, *next; k; k = next) {
        next = k->next;
        for (size_t v = 0; v < 256; v++)
            free(k->up[v]);
        free(k);
    }
    for (size_t c = 0; c < 16; c++)
        free(r->cat[c]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const bp_kindreg *bp_registry_find(const bp_registry *r, uint16_t kind) {
    if (!r) return NULL;
    bp_kindreg **tab = __atomic_load_n(&r->cat[BP_KIND_CATEGORY(kind)], __ATOMIC_ACQUIRE);
    return tab ? __atomic_load_n(&tab[BP_KIND_TYPE(kind)], __ATOMIC_ACQUIRE) : NULL;
}

bp_status bp_register_type(bp_store *s, const bp_type *t) {
    if (!s) return bp_err(BP_EINVAL, "bp_register_type: NULL store");
    bp_status rc = bp_type_check(t);
    if (rc) return rc;
    bp_registry *r = bp_typed_of(s)->reg;
    pthread_mutex_lock(&r->mu);
    const bp_kindreg *old = bp_registry_find(r, t->kind);
    if (old) {
        rc = bp_err(BP_EEXIST, "register '%s': kind 0x%04x is already registered as '%s'", t->name,
                    t->kind, old->type->name);
        goto out;
    }
    for (const bp_kindreg *k = r->all; k; k = k->next)
        if (strcmp(k->type->name, t->name) == 0) {
            rc = bp_err(BP_EEXIST,
                        "register '%s' (kind 0x%04x): the name is already registered "
                        "for kind 0x%04x",
                        t->name, t->kind, k->type->kind);
            goto out;
        }
    unsigned c = BP_KIND_CATEGORY(t->kind);
    bp_kindreg **tab = r->cat[c];
    if (!tab) {
        tab = calloc(4096, sizeof *tab);
        if (!tab) {
            rc = bp_err(BP_ENOMEM, "register '%s': out of memory", t->name);
            goto out;
        }
        __atomic_store_n(&r->cat[c], tab, __ATOMIC_RELEASE);
    }
    bp_kindreg *k = calloc(1, sizeof *k);
    if (!k) {
        rc = bp_err(BP_ENOMEM, "register '%s': out of memory", t->name);
        goto out;
    }
    k->type = t;
    k->next = r->all;
    r->all = k;
    __atomic_store_n(&tab[BP_KIND_TYPE(t->kind)], k, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

const bp_type *bp_registered_type(bp_store *s, uint16_t kind) {
    const bp_kindreg *k = s ? bp_registry_find(bp_typed_of(s)->reg, kind) : NULL;
    return k ? k->type : NULL;
}

static bool same_type(const bp_type *a, const bp_type *b) {
    return a == b || (a->kind == b->kind && a->version == b->version && a->size == b->size &&
                      a->n_fields == b->n_fields && strcmp(a->name, b->name) == 0);
}

bp_status bp_register_upcaster(bp_store *s, const bp_type *from, const bp_type *to, bp_upcast_fn fn,
                               void *ctx) {
    if (!s || !fn) return bp_err(BP_EINVAL, "bp_register_upcaster: NULL argument");
    bp_status rc;
    if ((rc = bp_type_check(from)) || (rc = bp_type_check(to))) return rc;
    if (from->kind != to->kind)
        return bp_err(BP_EINVAL, "upcaster '%s' -> '%s': kinds differ (0x%04x, 0x%04x)", from->name,
                      to->name, from->kind, to->kind);
    if (to->version != from->version + 1)
        return bp_err(BP_EINVAL, "upcaster '%s': versions %u -> %u are not consecutive", from->name,
                      from->version, to->version);
    bp_registry *r = bp_typed_of(s)->reg;
    pthread_mutex_lock(&r->mu);
    bp_kindreg *k = (bp_kindreg *)bp_registry_find(r, from->kind);
    if (!k)
        rc = bp_err(BP_EINVAL, "upcaster '%s': kind 0x%04x has no registered type", from->name,
                    from->kind);
    else if (to->version > k->type->version)
        rc = bp_err(BP_EINVAL, "upcaster '%s' v%u -> v%u: the registered '%s' is v%u", from->name,
                    from->version, to->version, k->type->name, k->type->version);
    else if (to->version == k->type->version && !same_type(to, k->type))
        rc = bp_err(BP_EINVAL, "upcaster to v%u of kind 0x%04x: '%s' is not the registered type",
                    to->version, to->kind, to->name);
    else if (k->up[from->version])
        rc = bp_err(BP_EEXIST, "upcaster '%s' v%u -> v%u is already registered", from->name,
                    from->version, to->version);
    else {
        bp_upstep *st = malloc(sizeof *st);
        if (!st) {
            rc = bp_err(BP_ENOMEM, "register upcaster: out of memory");
        } else {
            *st = (bp_upstep){from, to, fn, ctx};
            __atomic_store_n(&k->up[from->version], st, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ----------------------------------------------------------- upcasting */

bp_status bp_decode_versioned(const bp_registry *r, uint16_t kind, unsigned version,
                              const uint8_t *p, size_t n, const bp_type *t, void *out) {
    if (version == 0 || version == t->version) return bp_type_decode_checked(t, p, n, out);
    if (version > t->version)
        return bp_err(BP_EINVAL, "decode '%s' v%u: the payload is v%u, newer than the reader",
                      t->name, t->version, version);
    const bp_kindreg *k = bp_registry_find(r, kind);
    bp_upstep *st = k ? __atomic_load_n(&k->up[version], __ATOMIC_ACQUIRE) : NULL;
    if (!st)
        return bp_err(BP_EINVAL,
                      "decode '%s' v%u: the payload is v%u and no upcaster from v%u "
                      "is registered",
                      t->name, t->version, version, version);
    void *cur = malloc(st->from->size);
    if (!cur) return bp_err(BP_ENOMEM, "upcast: out of memory");
    bp_status rc = bp_type_decode_checked(st->from, p, n, cur); /* checked at registration */
    for (unsigned v = version; !rc && v < t->version; v++) {
        st = __atomic_load_n(&k->up[v], __ATOMIC_ACQUIRE);
        if (!st) {
            rc = bp_err(BP_EINVAL, "decode '%s': no upcaster from v%u (needed for a v%u payload)",
                        t->name, v, version);
            break;
        }
        void *next = calloc(1, st->to->size);
        if (!next) {
            rc = bp_err(BP_ENOMEM, "upcast: out of memory");
            break;
        }
        bp_err_clear();
        rc = st->fn(st->ctx, cur, next);
        if (rc > 0) rc = BP_EINVAL; /* an upcaster returns BP_OK or an error */
        if (rc) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", bp_last_error());
            rc = bp_err(rc, "upcast '%s' v%u -> v%u failed%s%s", t->name, v, v + 1,
                        msg[0] ? ": " : "", msg);
        }
        free(cur);
        cur = next;
    }
    if (!rc) {
        if (st->to->size != t->size)
            rc = bp_err(BP_EINVAL, "decode '%s': the last upcaster yields '%s' v%u, not the reader",
                        t->name, st->to->name, st->to->version);
        else
            memcpy(out, cur, t->size);
    }
    free(cur);
    return rc;
}

/* ------------------------------------------------------------ typed append */

#define ENC_STACK 2048

/* Options for a typed append: the caller's (struct_size checked) with the schema version. */
static void typed_opts(bp_append_options *o, const bp_append_options *given, uint8_t version) {
    bp_append_options init = BP_APPEND_OPTIONS_INIT;
    *o = given ? *given : init;
    o->schema_version = version;
}

bp_status bp_append_typed(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                          const bp_type *t, const void *value, const bp_append_options *opts) {
    if (!s) return bp_err(BP_EINVAL, "append_typed: NULL store");
    if (opts) BP_SIZE_CHECK("append_typed", opts, bp_append_options, BP_APPEND_OPTIONS_INIT);
    size_t max = bp_type_encoded_max(t);
    if (!max) return bp_type_check(t);
    uint8_t stack[ENC_STACK];
    uint8_t *buf = max <= sizeof stack ? stack : malloc(max);
    if (!buf) return bp_err(BP_ENOMEM, "append_typed '%s': out of memory", t->name);
    size_t len;
    bp_status rc = bp_type_encode(t, buf, max, &len, value);
    if (!rc) {
        bp_append_options o;
        typed_opts(&o, opts, t->version);
        rc = bp_append_ex(s, receipt, entity, scope, t->kind, buf, len, &o);
    }
    if (buf != stack) free(buf);
    return rc;
}

bp_status bp_append_batch_typed(bp_store *s, bp_receipt *receipts, const bp_typed_item *items,
                                size_t n) {
    if (!s) return bp_err(BP_EINVAL, "append_batch_typed: NULL store");
    if (n == 0) return BP_OK;
    if (!items) return bp_err(BP_EINVAL, "append_batch_typed: items is NULL");
    if (n > BP_BATCH_MAX)
        return bp_err(BP_ETOOBIG, "append_batch_typed: %zu items exceed the limit of %u", n,
                      BP_BATCH_MAX);
    bp_batch_item *bi = calloc(n, sizeof *bi);
    bp_append_options *os = calloc(n, sizeof *os);
    size_t *offs = calloc(n, sizeof *offs);
    bp_buf enc = {0};
    bp_status rc = BP_OK;
    if (!bi || !os || !offs) {
        rc = bp_err(BP_ENOMEM, "append_batch_typed: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const bp_typed_item *it = &items[i];
        size_t max = bp_type_encoded_max(it->type);
        if (!max) {
            bp_type_check(it->type);
            rc = bp_err(BP_EINVAL, "batch item %zu: %s", i, bp_last_error());
            break;
        }
        const bp_append_options *g = it->opts;
        if (g && !BP_SIZE_OK(g, bp_append_options)) {
            char fn[32];
            snprintf(fn, sizeof fn, "batch item %zu", i);
            rc = bp_err_size(fn, "bp_append_options", "BP_APPEND_OPTIONS_INIT", g->struct_size,
                             sizeof *g);
            break;
        }
        if (bp_buf_reserve(&enc, max)) {
            rc = bp_err(BP_ENOMEM, "append_batch_typed: out of memory");
            break;
        }
        size_t len;
        rc = bp_type_encode(it->type, enc.data + enc.len, max, &len, it->value);
        if (rc) {
            rc = bp_err(rc, "batch item %zu: %s", i, bp_last_error());
            break;
        }
        offs[i] = enc.len;
        enc.len += len;
        typed_opts(&os[i], g, it->type->version);
        bi[i] = (bp_batch_item){it->entity, it->scope, it->type->kind, NULL, len, &os[i]};
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) /* enc may have moved while it grew */
            bi[i].payload = enc.data + offs[i];
        rc = bp_append_batch(s, receipts, bi, n);
    }
out:
    free(bi);
    free(os);
    free(offs);
    bp_buf_free(&enc);
    return rc;
}

/* -------------------------------------------------------------- typed read */

bp_status bp_event_decode(bp_store *s, void *out, const bp_event *ev, const bp_type *t) {
    /* descriptors are immutable (typed.h): a loop of typed reads checks its type once */
    static _Thread_local const bp_type *checked;
    if (!s || !ev || !out) return bp_err(BP_EINVAL, "bp_event_decode: NULL argument");
    if (t != checked || !t) {
        bp_status rc = bp_type_check(t);
        if (rc) return rc;
        checked = t;
    }
    return bp_event_decode_checked(s, ev, t, out);
}

bp_status bp_event_decode_checked(bp_store *s, const bp_event *ev, const bp_type *t, void *out) {
    bp_status rc;
    if (ev->kind != t->kind)
        return bp_err(BP_EINVAL, "decode '%s': event %llu has kind 0x%04x, not 0x%04x", t->name,
                      (unsigned long long)ev->global_seq, ev->kind, t->kind);
    if (ev->payload_forgotten)
        return bp_err(BP_ENOTFOUND,
                      "decode '%s': event %llu (%s): its payload was forgotten (bp_forget)",
                      t->name, (unsigned long long)ev->global_seq, ev->entity);
    if (ev->header_only || (ev->payload_len && !ev->payload))
        return bp_err(BP_EINVAL, "decode '%s': event %llu was read without its payload", t->name,
                      (unsigned long long)ev->global_seq);
    rc = bp_decode_versioned(bp_typed_of(s)->reg, ev->kind, BP_EVENT_SCHEMA_VERSION(ev->flags),
                             ev->payload, ev->payload_len, t, out);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        return bp_err(rc, "event %llu (%s): %s", (unsigned long long)ev->global_seq, ev->entity,
                      msg);
    }
    return BP_OK;
}

bp_status bp_by_fact_typed(bp_store *s, bp_iter **out, const bp_type *t) {
    if (!out) return bp_err(BP_EINVAL, "bp_by_fact_typed: out is NULL");
    *out = NULL;
    bp_status rc = bp_type_check(t);
    if (rc) return rc;
    return bp_by_kind(s, out, t->kind, BP_READ_FULL);
}

bp_status bp_iter_next_typed(bp_iter *it, const bp_event **ev, void *out, const bp_type *t) {
    bp_status rc = bp_iter_next(it, ev);
    if (rc) return rc;
    return bp_event_decode(bp_iter_store(it), out, *ev, t);
}

/* ------------------------------------------------------------ the module */

static bp_status typed_open(bp_store *s, const bp_open_options *o, void **state) {
    (void)o;
    bp_typed_state *t = calloc(1, sizeof *t);
    if (!t) return bp_err(BP_ENOMEM, "%s: out of memory", bp_store_dir(s));
    *state = t; /* typed_free frees what was made, also after a failure below */
    pthread_mutex_init(&t->watch_mu, NULL);
    pthread_mutex_init(&t->schema_mu, NULL);
    if (bp_registry_new(&t->reg) || bp_projcache_new(&t->pc))
        return bp_err(BP_ENOMEM, "%s: out of memory", bp_store_dir(s));
    return BP_OK;
}

static void typed_stop(bp_store *s, void *state) {
    (void)state;
    bp_watch_stop_all(s);
}

/* Projection snapshots are a cache: one that cannot be written costs a refold later, not
 * the close (bp_projection_cache_stats counts it). */
static void typed_flush(bp_store *s, void *state) {
    (void)state;
    (void)bp_projection_flush(s);
}

static void typed_free(void *state) {
    bp_typed_state *t = state;
    bp_registry_free(t->reg);
    bp_projcache_free(t->pc);
    pthread_mutex_destroy(&t->watch_mu);
    bp_schemas_free(&t->schemas);
    pthread_mutex_destroy(&t->schema_mu);
    free(t);
}

static bp_status typed_forget(bp_store *s, void *state, const char *entity) {
    (void)state;
    return bp_projection_forget(s, entity);
}

const bp_store_module bp_typed_module = {"typed",    typed_open,   typed_stop, typed_flush,
                                         typed_free, typed_forget, NULL};
