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

/* put_bytes into a buffer: u32 length, then the bytes */
static uint8_t *put_mem(uint8_t *q, const void *p, size_t n) {
    bp_put_be32(q, (uint32_t)n);
    if (n) memcpy(q + 4, p, n);
    return q + 4 + n;
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
    size_t nfixed = (size_t)(p - fixed);
    size_t head = sizeof HASH_DOMAIN + nfixed + 16 + f->entity_len + f->scope_len + f->idem_len;
    uint8_t one[1024];
    if (head <= sizeof one) {
        /* the same bytes in two updates: everything before the payload from one buffer, then
         * the payload where it is (each update of a few bytes costs about as much as a block) */
        uint8_t *q = one;
        memcpy(q, HASH_DOMAIN, sizeof HASH_DOMAIN), q += sizeof HASH_DOMAIN;
        memcpy(q, fixed, nfixed), q += nfixed;
        q = put_mem(q, f->entity, f->entity_len);
        q = put_mem(q, f->scope, f->scope_len);
        q = put_mem(q, f->idem_key, f->idem_len);
        bp_put_be32(q, (uint32_t)f->payload_len), q += 4;
        blake3_hasher_update(&h, one, (size_t)(q - one));
        if (f->payload_len) blake3_hasher_update(&h, f->payload, f->payload_len);
        blake3_hasher_finalize(&h, out->b, 32);
        return;
    }
    blake3_hasher_update(&h, HASH_DOMAIN, sizeof HASH_DOMAIN);
    blake3_hasher_update(&h, fixed, nfixed);
    put_bytes(&h, f->entity, f->entity_len);
    put_bytes(&h, f->scope, f->scope_len);
    put_bytes(&h, f->idem_key, f->idem_len);
    put_bytes(&h, f->payload, f->payload_len);
    blake3_hasher_finalize(&h, out->b, 32);
}

void bp_blake3(const void *p, size_t n, uint8_t out[32]) {
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, p, n);
    blake3_hasher_finalize(&h, out, 32);
}

uint64_t bp_str_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

void bp_hex_encode(const uint8_t *p, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool bp_hex_decode(const char *text, size_t text_len, uint8_t *out, size_t n) {
    if (text_len != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
