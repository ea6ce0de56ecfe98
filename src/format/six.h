/*
 * six.h — segment index files (DIR/segments/NNNNNN.fidx, doc/FORMAT.md "Segment index
 * files"): a sealed segment's index in a form searched in place, from a read-only mapping.
 * Pure encode/decode over memory; no I/O. Part of the format layer (format.h).
 *
 * A file is a fixed header (BP_SIX_HEADER bytes, its own CRC) and ten blocks, each with its
 * offset, length and CRC in the header; the last, PAGES, holds the CRC32 of every 4 KiB page
 * of the nine others. bp_six_open checks the header only. A lookup checks only what it reads:
 * each page it touches is checked against PAGES the first time (a bit per page remembers it),
 * and each value it reads is checked against the bounds it relies on (a record's frame within
 * the segment, an entity's postings within the records, a name within NAMES...). A check that
 * fails marks its block bad: the lookup's answer is then meaningless (reads of it give zeros)
 * and bp_six_failed says so, so callers check it after their lookups. Opening an index, and
 * the first lookup in it, cost the same whatever its size; a lookup never reads outside the
 * file even when the file was crafted with valid CRCs.
 *
 * bp_six_check_all (verify) checks every block whole: its CRC, its pages, and the invariants
 * below. A lookup relies on the bounds alone; a crafted file that breaks an invariant of order
 * (with valid CRCs) can make a lookup miss what it lists, never read outside the file (readers
 * check every event they return against its frame).
 *
 * Invariants of a file bp_six_check_all accepts:
 *  - RECS: record i is the segment's i-th frame in file order; its offset is ascending,
 *    >= the segment header, and the frame ends where the next one starts (frames_end for
 *    the last): frames are contiguous. entity < n_ents, scope < n_scopes.
 *  - SEQS (only with BP_SIX_HOLES): strictly ascending seq offsets from first_seq, the
 *    first 0; without it record i has seq first_seq + i.
 *  - IDS: with BP_SIX_IDS_IN_ORDER record i's id, strictly ascending; else (id, record)
 *    pairs sorted by id, each record once.
 *  - ENTS: sorted by name (bytewise, a prefix first), names distinct; each entity's
 *    postings POST[post .. post + count) list its records ascending; the postings of all
 *    entities partition the records; its events have clocks first_clock .. + count - 1.
 *  - SCOPES: sorted and distinct like ENTS; count (>= 1) records name each.
 *  - KINDS: ascending kinds, each with its count (>= 1) of records; no other kind.
 *  - IDEM: (key hash, record) ascending by hash then record.
 * Names live in NAMES, without NUL; a name is 1..65535 bytes.
 */
#ifndef BP_SIX_H
#define BP_SIX_H

#include "format/format.h"

#define BP_SIX_VERSION 2 /* 2: PAGES (version 1 files are not read: passed over, rewritten) */
#define BP_SIX_HEADER 260
#define BP_SIX_PAGE 4096      /* the unit PAGES checks */
#define BP_SIX_PAGE_BITS 8192 /* pages whose check is remembered (32 MiB); past them, each read */
#define BP_SIX_REC_SIZE 12    /* offset u32 | entity u32 | scope u16 | kind u16 */
/* an entity: name_off u32 | name_len u16 | 0 u16 | first_clock u64 | count u32 | post u32 */
#define BP_SIX_ENT_SIZE 24
#define BP_SIX_SCOPE_SIZE 12 /* name_off u32 | name_len u16 | 0 u16 | count u32 */
#define BP_SIX_KIND_SIZE 8   /* kind u16 | 0 u16 | count u32 */
#define BP_SIX_IDEM_SIZE 12  /* key hash u64 | record u32 */

/* header flags */
#define BP_SIX_IDS_IN_ORDER 1u /* IDS holds each record's id in record order (ascending) */
#define BP_SIX_HOLES 2u        /* SEQS is present: the segment's seqs have holes */
#define BP_SIX_SEALED 4u       /* some record's payload is sealed (frame flag 0x0100) */

enum {
    BP_SIXB_RECS,
    BP_SIXB_IDS,
    BP_SIXB_SEQS,
    BP_SIXB_ENTS,
    BP_SIXB_POST,
    BP_SIXB_SCOPES,
    BP_SIXB_KINDS,
    BP_SIXB_IDEM,
    BP_SIXB_NAMES,
    BP_SIXB_PAGES, /* the CRC32 (u32) of each page of blocks 0..8, block by block */
    BP_SIXB_NBLOCKS
};

/* What ties an index file to its segment file: the segment's number, store, size, where its
 * frames end (its SIDX footer's offset) and the CRC32 its footer ends with. A compaction
 * replaces a segment under the same name; its index file names the new one. */
typedef struct bp_six_pair {
    uint32_t segno;
    uint8_t uuid[16];
    uint64_t seg_size;
    uint64_t frames_end;
    uint32_t footer_crc;
} bp_six_pair;

/* Encode the index of a sealed segment from its index block (records in seq order, its
 * entities, scopes, idempotency keys, seqs when it has holes; emap/smap views too) and each
 * block entity's first clock in the segment, appending the file's bytes to b. 0, -ENOMEM, or
 * -EINVAL (nothing appended) when the block does not describe a segment this format can
 * index: an empty block; frames that are not contiguous from the segment header on, do not
 * end at pair->frames_end or are shorter or longer than a frame can be; first_seq 0, or seqs
 * that are not strictly ascending from first_seq or span more than 2^32; an empty or repeated
 * name, an entity or scope that no record names, a record naming none, more than 65535
 * scopes; a first clock of 0 or one whose clocks overflow; a key of no record, or the same key
 * twice on a record; a file over 4 GiB. What it encodes, bp_six_open and bp_six_check_all
 * accept. */
int bp_six_encode(bp_buf *b, const bp_iblock *blk, const uint64_t *first_clock,
                  const bp_six_pair *pair);

/* The order of names in ENTS and SCOPES: bytewise, a name before every longer name it
 * begins. */
static inline int bp_six_name_cmp(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* The FNV-1a 64-bit hash of an idempotency key, as IDEM stores it. */
uint64_t bp_six_key_hash(const char *key, size_t len);

/* A view of an index file's bytes (p stays mapped while it is used). */
typedef struct bp_six {
    const uint8_t *p;
    size_t n;
    bp_six_pair pair;
    uint32_t flags;
    uint64_t first_seq, last_seq;
    uint64_t min_hlc, max_hlc;
    bp_id min_id, max_id;
    uint32_t n_recs, n_ents, n_scopes, n_kinds, n_idems;
    uint32_t off[BP_SIXB_NBLOCKS], len[BP_SIXB_NBLOCKS], crc[BP_SIXB_NBLOCKS];
    uint32_t page0[BP_SIXB_NBLOCKS];       /* block b's first page in PAGES */
    uint32_t checked;                      /* atomic: bit b set once block b passed a whole check */
    uint32_t bad;                          /* atomic: bit b set once a check of block b failed */
    uint32_t pages[BP_SIX_PAGE_BITS / 32]; /* atomic: bit i set once page i checked good */
} bp_six;

/* Check the header (magic, version, size, CRC, counts, block bounds) of the n bytes at p.
 * BP_ECORRUPT / BP_EVERSION with the reason, naming path. Only the first BP_SIX_HEADER bytes
 * are read (n may be the size of a file whose header alone was read, to check its fields). */
bp_status bp_six_open(bp_six *x, const uint8_t *p, size_t n, const char *path);
/* May block b be used: PAGES checked whole (its CRC, once) and no check of b failed so far.
 * False for b >= BP_SIXB_NBLOCKS. Its pages are checked as lookups read them. Safe from many
 * threads (a race checks twice). */
bool bp_six_need(bp_six *x, unsigned b);
/* Did a check of some block fail (a lookup's answer since is not to be used)? */
static inline bool bp_six_failed(const bp_six *x) {
    return __atomic_load_n(&x->bad, __ATOMIC_ACQUIRE) != 0;
}
/* Block b checked whole, once: its CRC, its pages and the invariants above. A check that
 * needs another block fails with it: ENTS needs NAMES; SCOPES needs NAMES and RECS, KINDS
 * needs RECS (their counts are the records'); POST needs ENTS and RECS (each entity's postings
 * are its records); all need PAGES. False for b >= BP_SIXB_NBLOCKS. */
bool bp_six_check_block(bp_six *x, unsigned b);
/* Every block checked whole (bp_six_check_block): BP_OK, or BP_ECORRUPT naming the first bad
 * block. */
bp_status bp_six_check_all(bp_six *x, const char *path);
/* Make the CRCs of the n bytes of a file at p right after an edit: PAGES (when every block is
 * within n and PAGES has the size they need), the blocks' within n, the header's (tests and
 * fuzzing: what a crafted file would do). */
void bp_six_reseal(uint8_t *p, size_t n);

/* The lookups. Each checks what it reads (above): on a failed check it gives zeros or -1 and
 * bp_six_failed turns true. */

/* Record i (< n_recs): its frame within the segment, its entity and scope within the
 * tables. */
typedef struct bp_six_rec {
    uint64_t seq;
    uint32_t offset, frame_len;
    uint32_t entity, scope;
    uint16_t kind;
} bp_six_rec;
void bp_six_rec_get(bp_six *x, uint32_t i, bp_six_rec *out);
/* Record i's seq. */
uint64_t bp_six_seq(bp_six *x, uint32_t i);
/* The record of seq, or -1. */
int64_t bp_six_find_seq(bp_six *x, uint64_t seq);
/* The record whose event id is id, or -1. */
int64_t bp_six_find_id(bp_six *x, const bp_id *id);
/* Record i's id. */
void bp_six_id(bp_six *x, uint32_t i, bp_id *out);

typedef struct bp_six_ent {
    const char *name; /* not NUL-terminated */
    uint16_t len;
    uint64_t first_clock;
    uint32_t count, post;
} bp_six_ent;
/* Entity e (< n_ents). */
void bp_six_ent_get(bp_six *x, uint32_t e, bp_six_ent *out);
/* The entity named so, or -1; *at (may be NULL) the first entity not below the name (a
 * prefix listing starts there). ENTS and NAMES checked. */
int64_t bp_six_find_ent(bp_six *x, const char *name, size_t len, uint32_t *at);
/* The k-th posting (a record index). */
uint32_t bp_six_post(bp_six *x, uint32_t k);
/* Ask the CPU for record i's RECS and IDS bytes (a hint: nothing is checked or read; an i out
 * of range does nothing). For readers that know which records they read next. */
void bp_six_prefetch_rec(const bp_six *x, uint32_t i);
/* Scope s's name and count; find by name, or -1. */
void bp_six_scope_get(bp_six *x, uint32_t s, const char **name, uint16_t *len, uint32_t *count);
int64_t bp_six_find_scope(bp_six *x, const char *name, size_t len);
/* How many records have kind. */
uint32_t bp_six_kind_count(bp_six *x, uint16_t kind);
/* KINDS entry of kind, or -1; entry i (< n_kinds): its kind and count. */
int64_t bp_six_find_kind(bp_six *x, uint16_t kind);
void bp_six_kind_get(bp_six *x, uint32_t i, uint16_t *kind, uint32_t *count);
/* The records filed under the key's hash: IDEM entries [*lo, *hi). */
void bp_six_idem_range(bp_six *x, uint64_t hash, uint32_t *lo, uint32_t *hi);
uint32_t bp_six_idem_rec(bp_six *x, uint32_t k);

#endif
