/* The outbox: appends staged in memory, then committed as one atomic batch
 * or discarded. Also the copy of an append's arguments that tickets share. */
#include "store/store_impl.h"

#include <errno.h>
#include <stdlib.h>

int bp_owned_item_init(bp_owned_item *oi, const bp_batch_item *it) {
    memset(oi, 0, sizeof *oi);
    size_t el = strlen(it->entity), sl = strlen(it->scope);
    const bp_append_options *o = it->opts;
    size_t kl = o && o->idempotency_key ? strlen(o->idempotency_key) : 0;
    char *copy = malloc(el + sl + kl + 3 + it->len);
    if (!copy) return -ENOMEM;
    oi->copy = copy;
    oi->item = *it;
    memcpy(copy, it->entity, el + 1);
    oi->item.entity = copy;
    copy += el + 1;
    memcpy(copy, it->scope, sl + 1);
    oi->item.scope = copy;
    copy += sl + 1;
    oi->item.payload = NULL;
    if (it->len) {
        memcpy(copy, it->payload, it->len);
        oi->item.payload = copy;
        copy += it->len;
    }
    if (!o) return 0;
    oi->opts = *o; /* its struct_size was checked */
    if (kl) {
        memcpy(copy, o->idempotency_key, kl + 1);
        oi->opts.idempotency_key = copy;
    }
    if (o->correlation_id) {
        oi->corr = *o->correlation_id;
        oi->opts.correlation_id = &oi->corr;
    }
    if (o->causation_id) {
        oi->caus = *o->causation_id;
        oi->opts.causation_id = &oi->caus;
    }
    oi->item.opts = &oi->opts;
    return 0;
}

void bp_owned_item_free(bp_owned_item *oi) {
    free(oi->copy);
    oi->copy = NULL;
}

/* ------------------------------------------------------------------ outbox */

/* Invariants: items[0..n) are staged in order, each validated when staged; n <= BP_BATCH_MAX. */
struct bp_outbox {
    bp_store *s;
    bp_owned_item **items;
    size_t n, cap;
};

bp_status bp_outbox_new(bp_store *s, bp_outbox **out) {
    if (!out) return bp_err(BP_EINVAL, "bp_outbox_new: out is NULL");
    *out = NULL;
    if (!s) return bp_err(BP_EINVAL, "bp_outbox_new: NULL store");
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    bp_outbox *ob = calloc(1, sizeof *ob);
    if (!ob) return bp_err(BP_ENOMEM, "bp_outbox_new: out of memory");
    ob->s = s;
    *out = ob;
    return BP_OK;
}

bp_status bp_outbox_stage(bp_outbox *ob, const char *entity, const char *scope, uint16_t kind,
                          const void *payload, size_t len, const bp_append_options *opts) {
    if (!ob) return bp_err(BP_EINVAL, "bp_outbox_stage: NULL outbox");
    if (ob->n >= BP_BATCH_MAX)
        return bp_err(BP_ETOOBIG, "outbox: %zu items staged already, the limit of a batch", ob->n);
    bp_batch_item it = {entity, scope, kind, payload, len, opts};
    bp_status rc = bp_validate_item(ob->s, &it, false, ob->n, true);
    if (rc) return rc;
    if (ob->n == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 16;
        bp_owned_item **items = realloc(ob->items, cap * sizeof *items);
        if (!items) return bp_err(BP_ENOMEM, "outbox: out of memory");
        ob->items = items;
        ob->cap = cap;
    }
    bp_owned_item *oi = malloc(sizeof *oi);
    if (!oi || bp_owned_item_init(oi, &it)) {
        free(oi);
        return bp_err(BP_ENOMEM, "outbox: out of memory staging item %zu", ob->n);
    }
    ob->items[ob->n++] = oi;
    return BP_OK;
}

size_t bp_outbox_len(const bp_outbox *ob) {
    return ob ? ob->n : 0;
}

bp_status bp_outbox_flush(bp_outbox *ob, bp_receipt *receipts) {
    if (!ob) return bp_err(BP_EINVAL, "bp_outbox_flush: NULL outbox");
    if (!ob->n) return BP_OK;
    bp_batch_item *items = malloc(ob->n * sizeof *items);
    if (!items) return bp_err(BP_ENOMEM, "outbox: out of memory flushing %zu items", ob->n);
    for (size_t i = 0; i < ob->n; i++)
        items[i] = ob->items[i]->item;
    bp_status rc = bp_append_batch(ob->s, receipts, items, ob->n);
    free(items);
    if (!rc) bp_outbox_discard(ob); /* on error the items stay staged: retry or discard */
    return rc;
}

void bp_outbox_discard(bp_outbox *ob) {
    if (!ob) return;
    for (size_t i = 0; i < ob->n; i++) {
        bp_owned_item_free(ob->items[i]);
        free(ob->items[i]);
    }
    ob->n = 0;
}

void bp_outbox_free(bp_outbox *ob) {
    if (!ob) return;
    bp_outbox_discard(ob);
    free(ob->items);
    free(ob);
}
