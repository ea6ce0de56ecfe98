/* Fuzz target: frame prefix check and body decoder (doc/FORMAT.md "Frames").
 * Whatever decodes must re-encode to a frame that decodes to the same fields. */
#include "format/format.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const bp_frame *a, const bp_frame *b) {
    const bp_event_fields *x = &a->f, *y = &b->f;
    return !memcmp(&x->event_id, &y->event_id, 16) &&
           !memcmp(&x->correlation_id, &y->correlation_id, 16) &&
           x->has_causation == y->has_causation &&
           (!x->has_causation || !memcmp(&x->causation_id, &y->causation_id, 16)) &&
           x->global_seq == y->global_seq && x->clock == y->clock && x->hlc == y->hlc &&
           x->kind == y->kind && x->flags == y->flags &&
           !memcmp(&x->prev_hash, &y->prev_hash, 32) &&
           !memcmp(&a->event_hash, &b->event_hash, 32) && x->batch_id == y->batch_id &&
           x->batch_index == y->batch_index && x->batch_count == y->batch_count &&
           x->entity_len == y->entity_len && !memcmp(x->entity, y->entity, x->entity_len) &&
           x->scope_len == y->scope_len && !memcmp(x->scope, y->scope, x->scope_len) &&
           x->idem_len == y->idem_len &&
           (!x->idem_len || !memcmp(x->idem_key, y->idem_key, x->idem_len)) &&
           x->payload_len == y->payload_len &&
           (!x->payload_len || !memcmp(x->payload, y->payload, x->payload_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t flen;
    size_t at;
    (void)bp_frame_peek(data, size, &flen);
    (void)bp_frame_find(data, 0, size, &at);
    bp_frame fr;
    if (bp_frame_decode(data, size, &fr) == BP_OK) {
        bp_buf b = {0};
        if (bp_frame_encode(&b, &fr) == 0) {
            bp_frame again;
            if (bp_frame_peek(b.data, b.len, &flen) != BP_FRAME_OK || flen != b.len ||
                bp_frame_decode(b.data + BP_FRAME_PREFIX, b.len - BP_FRAME_PREFIX, &again) !=
                    BP_OK ||
                !same(&fr, &again))
                abort(); /* the encoder and decoder disagree */
        }
        bp_buf_free(&b);
    }
    bp_err_clear();
    return 0;
}
