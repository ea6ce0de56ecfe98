/* The event hash: BLAKE3 over the versioned encoding of doc/FORMAT.md
 * ("Event hash"). Every header field except event_hash itself is covered. */
#include "core/core.h"

#include <blake3.h>

static const uint8_t HASH_DOMAIN[16] = "batpak/event/v1";

static void put_bytes(blake3_hasher *h, const void *p, size_t n) {
    uint8_t len[4];
    bp_put_be32(len, (uint32_t)n);
    blake3_hasher_update(h, len, 4);
    if (n) blake3_hasher_update(h, p, n);
}

void bp_event_hash(const bp_event_fields *f, bp_hash *out) {
    uint8_t fixed[16 + 16 + 1 + 16 + 8 + 8 + 8 + 2 + 2 + 32 + 8 + 4 + 4];
    uint8_t *p = fixed;
    memcpy(p, f->event_id.b, 16), p += 16;
    memcpy(p, f->correlation_id.b, 16), p += 16;
    *p++ = f->has_causation ? 1 : 0;
    if (f->has_causation)
        memcpy(p, f->causation_id.b, 16);
    else
        memset(p, 0, 16);
    p += 16;
    bp_put_be64(p, f->global_seq), p += 8;
    bp_put_be64(p, f->clock), p += 8;
    bp_put_be64(p, f->hlc), p += 8;
    bp_put_be16(p, f->kind), p += 2;
    bp_put_be16(p, f->flags), p += 2;
    memcpy(p, f->prev_hash.b, 32), p += 32;
    bp_put_be64(p, f->batch_id), p += 8;
    bp_put_be32(p, f->batch_index), p += 4;
    bp_put_be32(p, f->batch_count), p += 4;

    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, HASH_DOMAIN, sizeof HASH_DOMAIN);
    blake3_hasher_update(&h, fixed, (size_t)(p - fixed));
    put_bytes(&h, f->entity, f->entity_len);
    put_bytes(&h, f->scope, f->scope_len);
    put_bytes(&h, f->idem_key, f->idem_len);
    put_bytes(&h, f->payload, f->payload_len);
    blake3_hasher_finalize(&h, out->b, 32);
}
