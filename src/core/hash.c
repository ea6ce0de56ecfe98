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

/* The fixed-size fields of f, in hash order, into p: their length. */
static size_t put_fixed(const bp_event_fields *f, uint8_t *p) {
    uint8_t *q = p;
    memcpy(q, f->event_id.b, 16), q += 16;
    memcpy(q, f->correlation_id.b, 16), q += 16;
    *q++ = f->has_causation ? 1 : 0;
    if (f->has_causation)
        memcpy(q, f->causation_id.b, 16);
    else
        memset(q, 0, 16);
    q += 16;
    bp_put_be64(q, f->global_seq), q += 8;
    bp_put_be64(q, f->clock), q += 8;
    bp_put_be64(q, f->hlc), q += 8;
    bp_put_be16(q, f->kind), q += 2;
    bp_put_be16(q, f->flags), q += 2;
    memcpy(q, f->prev_hash.b, 32), q += 32;
    bp_put_be64(q, f->batch_id), q += 8;
    bp_put_be32(q, f->batch_index), q += 4;
    bp_put_be32(q, f->batch_count), q += 4;
    return (size_t)(q - p);
}

enum { FIXED_LEN = 16 + 16 + 1 + 16 + 8 + 8 + 8 + 2 + 2 + 32 + 8 + 4 + 4 };

/* The bytes hashed before the payload: the domain, the fixed fields, the names and the
 * payload's length. */
static size_t head_len(const bp_event_fields *f) {
    return sizeof HASH_DOMAIN + FIXED_LEN + 16 + f->entity_len + f->scope_len + f->idem_len;
}

/* What is hashed, up to the payload's length, into q (head_len bytes): its end. */
static uint8_t *put_head(const bp_event_fields *f, uint8_t *q) {
    memcpy(q, HASH_DOMAIN, sizeof HASH_DOMAIN), q += sizeof HASH_DOMAIN;
    q += put_fixed(f, q);
    q = put_mem(q, f->entity, f->entity_len);
    q = put_mem(q, f->scope, f->scope_len);
    q = put_mem(q, f->idem_key, f->idem_len);
    bp_put_be32(q, (uint32_t)f->payload_len), q += 4;
    return q;
}

void bp_event_hash(const bp_event_fields *f, bp_hash *out) {
    blake3_hasher h;
    blake3_hasher_init(&h);
    uint8_t one[1024];
    if (head_len(f) <= sizeof one) {
        /* the same bytes in two updates: everything before the payload from one buffer, then
         * the payload where it is (each update of a few bytes costs about as much as a block) */
        uint8_t *q = put_head(f, one);
        blake3_hasher_update(&h, one, (size_t)(q - one));
        if (f->payload_len) blake3_hasher_update(&h, f->payload, f->payload_len);
        blake3_hasher_finalize(&h, out->b, 32);
        return;
    }
    uint8_t fixed[FIXED_LEN];
    blake3_hasher_update(&h, HASH_DOMAIN, sizeof HASH_DOMAIN);
    blake3_hasher_update(&h, fixed, put_fixed(f, fixed));
    put_bytes(&h, f->entity, f->entity_len);
    put_bytes(&h, f->scope, f->scope_len);
    put_bytes(&h, f->idem_key, f->idem_len);
    put_bytes(&h, f->payload, f->payload_len);
    blake3_hasher_finalize(&h, out->b, 32);
}

#ifdef BP_BLAKE3_INTERNALS
/* BLAKE3 of events side by side. A message of one chunk (<= 1024 bytes) is hashed as its
 * full blocks but the last, compressed from the IV with CHUNK_START on the first, then the
 * last block (zero-padded, its length given) with CHUNK_END | ROOT: the first 32 bytes of the
 * root output are the chaining value that compression leaves (BLAKE3 spec, 2.5 and 2.6).
 * blake3_hash_many does the first part for up to 16 messages of as many blocks at once with
 * the CPU's widest vectors; a chained hash cannot, and its batch hashes one at a time. */
#include <blake3_impl.h>

enum { MANY = 16 };

void bp_event_hash_many(const bp_event_fields *const *f, bp_hash *const *out, size_t n) {
    uint8_t msg[MANY][BLAKE3_CHUNK_LEN];
    size_t len[MANY];
    while (n) {
        size_t m = 0; /* the next messages of one chunk, up to MANY (the rest: one by one) */
        while (m < n && m < MANY && head_len(f[m]) + f[m]->payload_len <= BLAKE3_CHUNK_LEN) {
            uint8_t *q = put_head(f[m], msg[m]);
            if (f[m]->payload_len) memcpy(q, f[m]->payload, f[m]->payload_len);
            len[m] = (size_t)(q - msg[m]) + f[m]->payload_len;
            m++;
        }
        if (!m) { /* longer than a chunk */
            bp_event_hash(f[0], out[0]);
            f++, out++, n--;
            continue;
        }
        /* runs of messages with as many blocks before their last, hashed side by side */
        uint8_t cvs[MANY][BLAKE3_OUT_LEN];
        for (size_t a = 0; a < m;) {
            size_t blocks = (len[a] - 1) / BLAKE3_BLOCK_LEN, b = a + 1;
            while (b < m && (len[b] - 1) / BLAKE3_BLOCK_LEN == blocks)
                b++;
            const uint8_t *in[MANY];
            for (size_t k = a; k < b; k++)
                in[k - a] = msg[k];
            if (blocks)
                blake3_hash_many(in, b - a, blocks, IV, 0, false, 0, CHUNK_START, 0, cvs[a]);
            for (size_t k = a; k < b; k++) {
                uint32_t cv[8];
                for (int w = 0; w < 8; w++)
                    cv[w] = blocks ? load32(cvs[k] + 4 * w) : IV[w];
                uint8_t last[BLAKE3_BLOCK_LEN] = {0};
                size_t at = blocks * BLAKE3_BLOCK_LEN;
                memcpy(last, msg[k] + at, len[k] - at);
                blake3_compress_in_place(cv, last, (uint8_t)(len[k] - at), 0,
                                         (uint8_t)((blocks ? 0 : CHUNK_START) | CHUNK_END | ROOT));
                store_cv_words(out[k]->b, cv);
            }
            a = b;
        }
        f += m, out += m, n -= m;
    }
}
#else
void bp_event_hash_many(const bp_event_fields *const *f, bp_hash *const *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        bp_event_hash(f[i], out[i]);
}
#endif

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
