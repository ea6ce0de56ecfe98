/* Fuzz target: the fixed-size structures: STORE file, segment header, segment trailer
 * (doc/FORMAT.md), and the search for a footer behind a damaged trailer. The first input
 * byte picks the decoder. What decodes must encode back
 * to the same bytes. */
#include "format/format.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] % 3;
    data++;
    size--;
    if (which == 0) {
        bp_store_ident id;
        if (bp_store_ident_decode(&id, data, size, "STORE") == BP_OK) {
            uint8_t out[BP_STORE_FILE_SIZE];
            bp_store_ident_encode(&id, out);
            if (size != sizeof out || memcmp(out, data, sizeof out)) abort();
        }
    } else if (which == 1) {
        bp_seg_header h;
        if (bp_seg_header_decode(&h, data, size, "segment") == BP_OK) {
            uint8_t out[BP_SEG_HEADER_SIZE];
            bp_seg_header_encode(&h, out);
            if (size < sizeof out || memcmp(out, data, sizeof out)) abort();
            (void)bp_seg_header_flags(data);
        }
    } else if (size >= BP_TRAILER_SIZE) {
        /* the file size: from 8 leading bytes when there are enough, else the input's */
        uint64_t off, fsize = size >= BP_TRAILER_SIZE + 8 ? bp_get_be64(data) : size;
        uint32_t len;
        (void)bp_footer_find(data, size, &off, &len);
        if (bp_trailer_decode(data + size - BP_TRAILER_SIZE, fsize, &off, &len)) {
            uint8_t t[BP_TRAILER_SIZE];
            bp_trailer_encode(t, off, len);
            if (memcmp(t, data + size - BP_TRAILER_SIZE, sizeof t)) abort();
            if (off + len + BP_TRAILER_SIZE != fsize) abort(); /* decode promises this */
        }
    }
    bp_err_clear();
    return 0;
}
