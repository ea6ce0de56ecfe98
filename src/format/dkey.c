/* Data key files, DIR/dkeys/NAME.key, and the sealed payload layout
 * (doc/FORMAT.md "Sealed payloads and data keys"). */
#include "core/core.h"
#include "format/format.h"

size_t bp_dkey_file_encode(uint8_t *out, const char *entity, size_t elen, const bp_dkey *k) {
    memcpy(out, "BPDK", 4);
    bp_put_be16(out + 4, 1);
    bp_put_be16(out + 6, (uint16_t)elen);
    memcpy(out + 8, entity, elen);
    uint8_t *p = out + 8 + elen;
    memcpy(p, k->id, BP_DKEY_ID_SIZE);
    memcpy(p + BP_DKEY_ID_SIZE, k->key, BP_DKEY_SIZE);
    size_t n = 8 + elen + BP_DKEY_ID_SIZE + BP_DKEY_SIZE;
    bp_put_be32(out + n, bp_crc32(out, n));
    return n + 4;
}

bp_status bp_dkey_file_decode(const uint8_t *p, size_t n, const char *entity, size_t elen,
                              bp_dkey *k) {
    if (n < 8 || memcmp(p, "BPDK", 4) != 0)
        return bp_err(BP_ECORRUPT, "not a data key file (%zu bytes, or no BPDK magic)", n);
    if (bp_get_be16(p + 4) != 1)
        return bp_err(BP_EVERSION, "data key file version %u (this library reads 1)",
                      bp_get_be16(p + 4));
    size_t el = bp_get_be16(p + 6);
    if (!el || el > BP_COORD_MAX)
        return bp_err(BP_ECORRUPT, "data key file: entity length %zu (1..%d)", el, BP_COORD_MAX);
    size_t want = 8 + el + BP_DKEY_ID_SIZE + BP_DKEY_SIZE + 4;
    if (n != want)
        return bp_err(BP_ECORRUPT, "data key file: %zu bytes, its entity length says %zu", n, want);
    if (bp_get_be32(p + n - 4) != bp_crc32(p, n - 4))
        return bp_err(BP_ECORRUPT, "data key file: crc mismatch");
    if (el != elen || memcmp(p + 8, entity, elen) != 0)
        return bp_err(BP_ECORRUPT, "data key file: it holds the key of another entity");
    memcpy(k->id, p + 8 + el, BP_DKEY_ID_SIZE);
    memcpy(k->key, p + 8 + el + BP_DKEY_ID_SIZE, BP_DKEY_SIZE);
    return BP_OK;
}

void bp_dkey_file_name(const char *entity, size_t elen, char out[BP_DKEY_NAME_SIZE]) {
    uint8_t h[32];
    bp_blake3(entity, elen, h);
    bp_hex_encode(h, 16, out);
    memcpy(out + 32, ".key", 5);
}
