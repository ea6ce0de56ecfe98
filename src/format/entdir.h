/*
 * entdir.h — the entity checkpoint (DIR/entities.ckpt, doc/FORMAT.md "entities.ckpt"): every
 * entity's clock and head hash, and every scope name, as they stood at the end of a sealed
 * segment. With it, an open attaches the sealed segments up to that one by their index files
 * alone, without decoding their footers. Pure encode/decode over memory; no I/O. Part of the
 * format layer (format.h).
 *
 * Invariants of a file bp_entdir_open accepts:
 *  - the header's counts and the file's length agree: n_entities entries, then n_scopes
 *    names, then the CRC32 of every byte before it, nothing else;
 *  - every name is 1..255 bytes; the entities are in strictly ascending name order
 *    (bp_six_name_cmp: bytewise, a name before every longer name it begins), so none is
 *    named twice and one is found by binary search (bp_entdir_find); no scope is named twice;
 *  - an entity's clock is >= 1 (an entity without events is not listed).
 */
#ifndef BP_ENTDIR_H
#define BP_ENTDIR_H

#include "format/format.h"

#define BP_ENTDIR_VERSION 2 /* 2: entities in name order (version 1 files are not read) */
#define BP_ENTDIR_HEADER 76

/* What the checkpoint stands for: the state at the end of segment segno (sealed: its size
 * and the CRC32 its SIDX footer ends with pair it with the file), seqs slots covered (the
 * store's next seq then was seqs + 1), holes of them removed by compaction, and the ANCHORS
 * range it was written under (upto, last_segno; 0 when the store had none). */
typedef struct bp_entdir_meta {
    uint8_t uuid[16];
    uint32_t segno;
    uint32_t footer_crc;
    uint64_t seg_size;
    uint64_t seqs;
    uint64_t holes;
    uint64_t anchors_upto;
    uint32_t anchors_last_segno;
    uint32_t n_entities, n_scopes;
} bp_entdir_meta;

/* Start a file for m (its counts are set by bp_entdir_finish): the header, appended to b. */
int bp_entdir_begin(bp_buf *b, const bp_entdir_meta *m);
/* Append an entity (name: 1..255 bytes, clock >= 1) or a scope (1..255 bytes). 0, -ENOMEM or
 * -EINVAL (nothing appended). */
int bp_entdir_add_entity(bp_buf *b, const char *name, size_t len, uint64_t clock,
                         const bp_hash *head);
int bp_entdir_add_scope(bp_buf *b, const char *name, size_t len);
/* Write the counts into the header and append the CRC. 0 or -ENOMEM. */
int bp_entdir_finish(bp_buf *b, uint32_t n_entities, uint32_t n_scopes);

/* A checked view of a file's bytes (p stays valid while it is used). */
typedef struct bp_entdir {
    const uint8_t *p;
    size_t n;
    bp_entdir_meta m;
    size_t ents_off, scopes_off; /* where the entities and the scopes start */
    size_t name_bytes;           /* the entities' names, a NUL each */
    uint64_t clock_sum;          /* the entities' clocks added up (mod 2^64) */
} bp_entdir;
/* Check the n bytes at p (magic, version, CRC, lengths, the entities' order; the scopes are
 * checked distinct by the caller, which hashes them anyway), adding up the entities' name
 * bytes and clocks on the way. BP_ECORRUPT / BP_EVERSION naming path. */
bp_status bp_entdir_open(bp_entdir *d, const uint8_t *p, size_t n, const char *path);

/* Walk the entities, then the scopes, of an opened file: *pos starts at d->ents_off (or
 * d->scopes_off) and moves past the entry read. */
void bp_entdir_entity(const bp_entdir *d, size_t *pos, const char **name, uint8_t *len,
                      uint64_t *clock, bp_hash *head);
void bp_entdir_scope(const bp_entdir *d, size_t *pos, const char **name, uint8_t *len);
/* Entry i's offset into out[i], for each of the file's d->m.n_entities entities. */
void bp_entdir_offsets(const bp_entdir *d, uint32_t *out);
/* The entity named so (its entry number, for offs[]), or -1; *at (may be NULL) the first entry
 * not below the name. offs as bp_entdir_offsets fills it. */
int64_t bp_entdir_find(const bp_entdir *d, const uint32_t *offs, const char *name, size_t len,
                       uint32_t *at);

#endif
