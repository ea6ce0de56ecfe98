/* recover.h — recovery of one segment at open (internal). */
#ifndef BP_RECOVER_H
#define BP_RECOVER_H

#include "store/store_impl.h"

/*
 * Bring the events of segment seg (file at path) into the index.
 * scan_from: first byte not covered by the checkpoint (0 or header size = all).
 * try_footer: load from the SIDX footer when the segment is sealed and valid.
 * is_tail: the newest segment; a torn tail there is cut, elsewhere it is corruption.
 * *stop_after: salvage cut a non-tail segment; later segments must be set aside.
 */
bp_status bp_recover_segment(bp_store *s, bp_segment *seg, const char *path, uint64_t scan_from,
                             bool try_footer, bool is_tail, bool *stop_after);

/* A free name for a new file in DIR/quarantine: base, or base.2, base.3, ...
 * when taken, so that a later cut never replaces an earlier one. Creates the
 * directory; qdir receives its path, name the chosen file name. 0 or -errno. */
#define BP_QNAME_MAX 320
int bp_quarantine_name(bp_store *s, const char *base, char qdir[4096], char name[BP_QNAME_MAX]);

/* Insert every record of a decoded block (checkpoint or footer) into the
 * index. Runs during open, before the handle is shared. */
bp_status bp_recover_load_block(bp_store *s, bp_iblock *blk, const char *what);

/* A frame scanned in a segment: its fields (pointing into the bytes scanned) and place. */
typedef struct bp_scanned {
    bp_frame fr;
    uint32_t offset, len;
} bp_scanned;
/* Insert n scanned frames of seg into the index, checking each entity's chain: BP_ECORRUPT
 * naming the frame that breaks one, BP_ENOMEM. At open, or with ilock held exclusive. */
bp_status bp_recover_insert(bp_store *s, const bp_segment *seg, bp_scanned *v, size_t n);

/* recover_open.c: recovery at open (before the modules open): an interrupted compaction
 * finished or undone, the segments listed, the checkpoint loaded where it fits, each segment
 * loaded or scanned, a torn tail cut; lost data refused unless the open accepts the loss. */
bp_status bp_store_recover(bp_store *s);

/* A salvage moves data[from, end) of a segment to quarantine: each frame there that still
 * checks counts in the open report's events_lost (and first_lost_seq). */
void bp_recover_count_lost(bp_store *s, const uint8_t *data, size_t from, size_t end);

#endif
