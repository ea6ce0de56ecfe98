/* Fuzz target: the index block (doc/FORMAT.md "Index block") as itself, wrapped in a SIDX
 * footer and wrapped in index.ckpt, each with a correct CRC so the fuzzer reaches the
 * structure behind it; and the input as a whole footer and checkpoint. A block that decodes
 * is loaded into an in-memory index, exported and encoded again, and must decode again. */
#include "format/format.h"
#include "store/index.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(bp_iblock *blk) {
    bp_index x;
    if (bp_index_init(&x)) return;
    if (blk->n_recs && blk->first_seq != 1) { /* load_block needs first_seq == n + 1 */
        bp_index_free(&x);
        return;
    }
    if (bp_index_load_block(&x, blk) == 0 && x.n) {
        bp_iblock out;
        if (bp_index_export(&x, 0, x.n, &out) == 0) {
            bp_buf b = {0};
            if (bp_iblock_encode(&b, &out) == 0) {
                bp_iblock back;
                if (bp_iblock_decode(&back, b.data, b.len, "re-encoded") != BP_OK) abort();
                if (back.n_recs != x.n) abort();
                bp_iblock_free(&back);
            }
            bp_buf_free(&b);
            bp_index_block_release(&out);
        }
        for (uint64_t i = 0; i < x.n; i++)
            if (bp_index_find_id(&x, &x.recs[i].id) < 0) abort(); /* every id is findable */
    }
    bp_index_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bp_iblock blk;
    if (bp_iblock_decode(&blk, data, size, "block") == BP_OK) load(&blk);
    bp_iblock_free(&blk);

    /* as a footer body: "SIDX" ver 0 len | body | crc */
    bp_buf f = {0};
    uint8_t h[12] = {'S', 'I', 'D', 'X', 0, 0, 0, 0, 0, 0, 0, 0};
    bp_put_be16(h + 4, BP_FORMAT_VERSION);
    bp_put_be32(h + 8, (uint32_t)size);
    if (bp_buf_append(&f, h, sizeof h) == 0 && bp_buf_append(&f, data, size) == 0) {
        uint8_t c[4];
        bp_put_be32(c, bp_crc32(f.data, f.len));
        if (bp_buf_append(&f, c, 4) == 0 &&
            bp_footer_decode(&blk, f.data, f.len, "footer") == BP_OK)
            load(&blk);
        bp_iblock_free(&blk);
    }
    bp_buf_free(&f);
    if (bp_footer_decode(&blk, data, size, "footer") == BP_OK) load(&blk);
    bp_iblock_free(&blk);

    /* as a checkpoint body: a fixed head, the block length, the block, crc */
    bp_buf k = {0};
    uint8_t head[64] = {'B', 'P', 'C', 'K'};
    bp_put_be16(head + 4, BP_FORMAT_VERSION);
    bp_put_be32(head + 60, (uint32_t)size);
    bp_ckpt_meta m;
    if (bp_buf_append(&k, head, sizeof head) == 0 && bp_buf_append(&k, data, size) == 0) {
        uint8_t c[4];
        bp_put_be32(c, bp_crc32(k.data, k.len));
        if (bp_buf_append(&k, c, 4) == 0 &&
            bp_ckpt_decode(&m, &blk, k.data, k.len, "ckpt") == BP_OK)
            load(&blk);
        bp_iblock_free(&blk);
    }
    bp_buf_free(&k);
    if (bp_ckpt_decode(&m, &blk, data, size, "ckpt") == BP_OK) load(&blk);
    bp_iblock_free(&blk);
    bp_err_clear();
    return 0;
}
