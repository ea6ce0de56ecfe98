/* piece.h — index pieces of the active segment (piece.c), for readers of a live writer's
 * store (doc/FORMAT.md "Pieces"). Internal to the store. */
#ifndef BP_PIECE_H
#define BP_PIECE_H

#include "store/store_impl.h"

/* The frames a writer lets pass between two pieces, and the entity checkpoint's name. */
#define BP_PIECE_BYTES (8u << 20)
#define BP_PIECE_NAME "entities.part"
/* [w] After a publish: write a piece of the active segment when at least BP_PIECE_BYTES of
 * frames passed since the last one and (unless force: bp_store_sync) the last cost at most
 * 1/50 of the time since. Failures are counted, never returned. */
void bp_piece_maybe(bp_store *s, bool force);
/* [w] The active segment was sealed (its index file and entities.ckpt written): its piece
 * goes. */
void bp_piece_drop(bp_store *s);
/* Writable open: remove every piece (a crash may have left them past the frames kept). */
void bp_piece_clean(bp_store *s);
/* Read-only open, recovery (entckpt.c): attach the piece of segment seg->segno that m (the
 * entity checkpoint of entities.part) names, checked against the segment's frames: true with
 * seg->six and seg->six_end set. */
bool bp_piece_attach(bp_store *s, bp_segment *seg, const bp_entdir_meta *m);
/* entckpt.c: write an entity checkpoint of the index as it is now (every event it holds
 * published) named name in DIR, for segment segno ending at seg_size with footer_crc. */
bp_status bp_entckpt_write_now(bp_store *s, const char *name, uint32_t segno, uint64_t seg_size,
                               uint32_t footer_crc);

#endif
