/* Cursor checkpoint files, DIR/cursors/ID.ckpt (doc/FORMAT.md "Cursor checkpoints"). */
#include "core/core.h"
#include "format/format.h"

void bp_cursorck_encode(uint8_t out[BP_CURSORCK_SIZE], uint64_t position, const bp_id *id) {
    memcpy(out, "BPCU", 4);
    bp_put_be32(out + 4, 1);
    bp_put_be64(out + 8, position);
    memcpy(out + 16, id->b, 16);
    bp_put_be32(out + 32, bp_crc32(out, 32));
}

bp_status bp_cursorck_decode(const uint8_t *p, size_t n, uint64_t *position, bp_id *id) {
    if (n != BP_CURSORCK_SIZE || memcmp(p, "BPCU", 4) != 0)
        return bp_err(BP_ECORRUPT, "not a cursor checkpoint (%zu bytes, or no BPCU magic)", n);
    if (bp_get_be32(p + 32) != bp_crc32(p, 32))
        return bp_err(BP_ECORRUPT, "cursor checkpoint: crc mismatch");
    if (bp_get_be32(p + 4) != 1)
        return bp_err(BP_EVERSION, "cursor checkpoint version %u (this library reads 1)",
                      bp_get_be32(p + 4));
    *position = bp_get_be64(p + 8);
    memcpy(id->b, p + 16, 16);
    return BP_OK;
}
