/* Fuzz target: the entity checkpoint (src/format/entdir.h, doc/FORMAT.md "entities.ckpt"), the
 * input as a file and again with its CRC made right, so the fuzzer reaches the structure
 * behind it. Beyond "no crash, no read outside the file": a file bp_entdir_open accepts walks
 * entry by entry to exactly its end, every name 1..255 bytes and every clock >= 1, and its
 * entries encoded again under its header give the same bytes. */
#include "format/entdir.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static void one(const uint8_t *p, size_t n) {
    bp_entdir d;
    if (bp_entdir_open(&d, p, n, "entities.ckpt") != BP_OK) {
        bp_err_clear();
        return;
    }
    bp_buf b = {0};
    MUST(bp_entdir_begin(&b, &d.m) == 0);
    size_t pos = d.ents_off;
    for (uint32_t i = 0; i < d.m.n_entities; i++) {
        const char *name;
        uint8_t len;
        uint64_t clock;
        bp_hash head;
        bp_entdir_entity(&d, &pos, &name, &len, &clock, &head);
        MUST(len >= 1 && clock >= 1 && pos <= n - 4);
        MUST((const uint8_t *)name >= p && (const uint8_t *)name + len <= p + n - 4);
        MUST(bp_entdir_add_entity(&b, name, len, clock, &head) == 0);
    }
    MUST(pos == d.scopes_off);
    for (uint32_t i = 0; i < d.m.n_scopes; i++) {
        const char *name;
        uint8_t len;
        bp_entdir_scope(&d, &pos, &name, &len);
        MUST(len >= 1 && pos <= n - 4);
        MUST(bp_entdir_add_scope(&b, name, len) == 0);
    }
    MUST(pos == n - 4);
    MUST(bp_entdir_finish(&b, d.m.n_entities, d.m.n_scopes) == 0);
    MUST(b.len == n && memcmp(b.data, p, n) == 0);
    bp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size);
    if (size < BP_ENTDIR_HEADER + 4) return 0;
    uint8_t *c = malloc(size);
    if (!c) return 0;
    memcpy(c, data, size);
    bp_put_be32(c + size - 4, bp_crc32(c, size - 4));
    one(c, size);
    free(c);
    return 0;
}
