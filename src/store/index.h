/*
 * index.h — the in-memory index. Not thread-safe by itself: the store guards
 * it with a rwlock (writers exclusive, readers shared).
 *
 * Invariants:
 *  - rbase <= list_base <= n. Slots below rbase are the six tier's: their records are in
 *    their segments' index files (the store reads them: bp_store_rec), not here.
 *  - recs[i - rbase] (BP_XREC(x, i)), for rbase <= i < n, describes the event with
 *    global_seq == i + 1 (dense), or is a hole
 *    (frame_len == 0: that event was removed by a compaction; a hole is in no list and
 *    not in idtab, and readers skip it; its segno is the compacted segment it fell in).
 *  - recs[].segno is ascending.
 *  - entities[e].slots lists that entity's slots from list_base on, in clock order: the
 *    event at slots.v[k] has clock entities[e].base + entities[e].tier + k + 1. Its tier
 *    events (slots below list_base: the six tier's) are listed by their segments' index
 *    files, clocks base + 1 .. base + tier.
 *  - scopes[s].slots and kinds[k].slots are ascending slot lists of the slots from list_base
 *    on: the slots below it (a prefix of sealed segments and the holes between them) are
 *    listed by their segments' index files (the store's six tier), in no list here.
 *  - idtab maps event ids to slot + 1 (0 = empty); open addressing, load <= 1/2 of the
 *    events placed (n - holes - noids), not of the seqs: holes (all with the zero id) are never
 *    placed, nor the events of the slot ranges in noid (ascending, disjoint): their segments'
 *    ids and idempotency keys are looked up in their segment index files (the store's
 *    bp_store_find_id and bp_store_find_idem), and noids counts those events. idem_keys
 *    holds the keys of the other events.
 *  - Entries may exist above the store's publish watermark; readers filter.
 */
#ifndef BP_INDEX_H
#define BP_INDEX_H

#include "format/entdir.h"
#include "format/format.h"

#include <pthread.h>

typedef struct bp_u32vec {
    uint32_t *v;
    uint32_t n, cap;
} bp_u32vec;

/* An interning table of short strings (<= 65535 bytes) with hashed lookup. Invariant: the
 * strings of ids [arena_lo, arena_hi) lie in arena (one block, freed whole); every other
 * string is its own allocation. */
typedef struct bp_strtab {
    char **s; /* NUL-terminated copies */
    uint16_t *len;
    uint32_t n, cap;
    uint32_t *hidx; /* id + 1, 0 = empty */
    uint32_t hcap;  /* power of two */
    char *arena;    /* NULL, or room for the strings added after bp_strtab_reserve */
    size_t arena_used, arena_cap;
    uint32_t arena_lo, arena_hi;
} bp_strtab;
/* Room for n more strings of bytes bytes in all (their NULs included): the arrays and the hash
 * table grown once, the strings copied into one block (when the table has no block yet). 0 or
 * -ENOMEM (the table unchanged but for room). */
int bp_strtab_reserve(bp_strtab *t, uint32_t n, size_t bytes);

int64_t bp_strtab_find(const bp_strtab *t, const char *s, size_t len);
void bp_strtab_free(bp_strtab *t);

/* First index i in the ascending list v with v->v[i] >= slot (v->n if none). */
uint32_t bp_u32vec_lower_bound(const bp_u32vec *v, uint64_t slot);

/* Running heads of entity chains outside the index (a batch being built,
 * verify's replay). Invariant: clock[k] and head[k] belong to names.s[k]. */
typedef struct bp_chains {
    bp_strtab names;
    uint64_t *clock;
    bp_hash *head;
    uint32_t cap;
} bp_chains;
/* Index of the entity's chain, or -1. */
int64_t bp_chains_find(const bp_chains *c, const char *e, size_t len);
/* Add an entity with the given head; returns its index or -ENOMEM. */
int64_t bp_chains_add(bp_chains *c, const char *e, size_t len, uint64_t clock, const bp_hash *head);
void bp_chains_free(bp_chains *c);
int64_t bp_strtab_add(bp_strtab *t, const char *s, size_t len); /* id or -ENOMEM */

typedef struct bp_entity_state {
    bp_hash head;  /* hash of the entity's newest event (published or not), or its anchor's */
    uint64_t base; /* clock of its last event removed by compaction (its anchor), else 0 */
    uint64_t tier; /* its events below list_base (in no list here) */
    bp_u32vec slots;
} bp_entity_state;

/* The record of slot (rbase <= slot < n), an lvalue. */
#define BP_XREC(x, slot) ((x)->recs[(slot) - (x)->rbase])

/* Is the record a hole (an event removed by compaction)? */
#define BP_IREC_HOLE(r) ((r)->frame_len == 0)

/* The entities of an entity checkpoint (format/entdir.h) searched in place (index_cold.c): an
 * open loads none of them; each goes into the hash table the first time it is looked up.
 * Invariants:
 *  - an entry whose name is in entity_names is shadowed: the table's state is the entity's
 *    (an anchored entity is interned when the directory is set, the others at first lookup,
 *    with base 0, tier its clock, head its head); left counts the entries not shadowed;
 *  - entities_cap, entity_names' arrays and its hash table have room for left more entities,
 *    so that interning one (under mu, by a reader holding the store's ilock shared or by the
 *    writer) never moves or grows anything a concurrent reader uses: the new entity's state is
 *    written before its name is published in the table (release), and n after it;
 *  - d's bytes stay mapped (by the store) while the directory is set;
 *  - an entity interned at a lookup (bp_index_entity) has the state verify gave when it could
 *    tell (the store reads the entity's newest event where the segments say it is: a
 *    checkpoint that lies about a clock or head, CRC and sums right, is not believed), else
 *    the file's; one interned by an insert or a block load (recovery) has the file's. */
/* 1 with the entity's clock and head as its events have them, -1 when it has none, 0 when that
 * cannot be told. */
typedef int (*bp_cold_verify_fn)(void *ctx, const char *name, size_t len, uint64_t *clock,
                                 bp_hash *head);
typedef struct bp_index_cold {
    bp_entdir d;
    uint32_t *offs; /* entry i's offset in d (bp_entdir_offsets) */
    uint32_t left;  /* atomic */
    pthread_mutex_t mu;
    bp_cold_verify_fn verify; /* NULL: the file's state is taken */
    void *verify_ctx;
    uint64_t lies; /* atomic: entities whose state verify corrected */
} bp_index_cold;

typedef struct bp_index {
    bp_index_cold *cold; /* NULL: every entity is in entity_names */
    bp_irec *recs;       /* the records of slots rbase .. n - 1 */
    uint64_t n;          /* slots (seqs) indexed: the next event's slot */
    uint64_t cap;        /* records recs has room for */
    uint64_t rbase;      /* the first slot recs describes (the six tier's end) */
    bp_strtab entity_names;
    bp_entity_state *entities; /* parallel to entity_names */
    uint32_t entities_cap;
    bp_strtab scope_names;
    bp_u32vec *scopes; /* parallel to scope_names */
    uint32_t scopes_cap;
    uint16_t *kind_ids; /* 65536 entries: kind -> kinds index + 1 */
    bp_u32vec *kinds;
    uint16_t n_kinds;
    uint32_t *idtab;
    uint64_t idcap;
    bp_strtab idem_keys;
    uint32_t *idem_slots; /* parallel to idem_keys */
    uint32_t idem_cap;
    uint64_t holes; /* records that are holes */
    uint64_t *noid; /* pairs [from, to): slot ranges whose ids idtab leaves out */
    uint32_t n_noid, noid_cap;
    uint64_t noids;     /* events (not holes) in those ranges */
    uint64_t list_base; /* scopes[] and kinds[] list the slots from here on */
} bp_index;

int bp_index_init(bp_index *x);
void bp_index_free(bp_index *x);
/* Free x but hand its entity and scope name tables (and the strings they hold) to the caller:
 * pointers to those strings stay valid. */
void bp_index_free_keep_names(bp_index *x, bp_strtab *entities, bp_strtab *scopes);

/* Insert the next event (r's seq must be x->n + 1). idem may be NULL. 0 or -ENOMEM
 * (on -ENOMEM the index is unchanged). */
int bp_index_insert(bp_index *x, const bp_irec *r, const char *entity, size_t elen,
                    const char *scope, size_t slen, const bp_hash *hash, const char *idem,
                    size_t ilen);
/* Append every record of a decoded block (first_seq must be x->n + 1, or above it for a
 * block with seqs: the seqs between become holes), with
 * its entity heads and idempotency keys: the fast path of open. An empty index
 * takes over blk->recs (left NULL; the rest of blk is unchanged). 0, -ENOMEM, -EOVERFLOW,
 * or -EINVAL (the block names an entity or scope twice); on failure the index must be
 * discarded. */
int bp_index_load_block(bp_index *x, bp_iblock *blk);
/* The same, leaving the block's ids and idempotency keys out of idtab and idem_keys (a
 * segment whose index file answers for them): its slot range joins noid. */
int bp_index_load_block_noid(bp_index *x, bp_iblock *blk);
/* A block of the six tier (a sealed segment whose index file answers for everything): only
 * its entities (each one's tier counts its events, its head is the block's), scopes and
 * holes; no record, list entry, id or key is kept (its slot range joins noid; n, rbase and
 * list_base move past its last seq). Only while the index holds nothing but such slots
 * (x->n == rbase == list_base). 0, -ENOMEM, -EOVERFLOW or -EINVAL (an empty block, seqs
 * that do not follow x->n or do not ascend, a hole, a repeated entity); on failure the index
 * must be discarded. */
int bp_index_load_tier(bp_index *x, const bp_iblock *blk);
/* The six tier of an index that holds nothing but anchors and the entity states loaded from
 * an entity checkpoint: its slot ranges [bounds[i], bounds[i + 1]) (n ranges, bounds[0] 0,
 * ascending) join noid, holes of them are holes; n, rbase and list_base move to bounds[n].
 * 0, -ENOMEM or -EINVAL (not such an index, bounds not ascending, holes > slots). */
int bp_index_tier_ranges(bp_index *x, const uint64_t *bounds, uint32_t n, uint64_t holes);
/* The id of entity (scope: false) or scope (true) name, made when the index has none: an entity
 * made so has no event, anchor or tier yet. -ENOMEM. */
int64_t bp_index_intern(bp_index *x, const char *name, size_t len, bool scope);
/* Room for n more entities (names of name_bytes bytes in all, their NULs included): what a
 * cold directory may intern (bp_index_cold_set). 0 or -ENOMEM. */
int bp_index_reserve(bp_index *x, uint32_t n, size_t name_bytes);
/* Place the ids of the noid range [from, to) (exactly one of them) in idtab, and its
 * idempotency keys keys[0..n_keys) (rec: the slot - from) in idem_keys: its segment index
 * file cannot answer. 0, -ENOMEM (index unchanged) or -EINVAL (no such range). */
int bp_index_place_ids(bp_index *x, uint64_t from, uint64_t to, const bp_iidem *keys,
                       uint32_t n_keys);
/* Slot of an event id, or -1. */
int64_t bp_index_find_id(const bp_index *x, const bp_id *id);
/* Fetch the id table's slot for id into the cache, ahead of inserting it. */
void bp_index_prefetch_id(const bp_index *x, const bp_id *id);
/* Tests and diagnostics: the id table's entries, and the probes looking up each of them once
 * takes (its distance from its home bucket + 1, summed). */
void bp_index_idtab_stats(const bp_index *x, uint64_t *entries, uint64_t *probes);
/* Entity id, or -1 when the index has no such entity. An entity of the cold directory is
 * interned on the way (safe with the index held shared: see bp_index_cold); -ENOMEM when it
 * cannot be. */
int64_t bp_index_entity(bp_index *x, const char *name, size_t len);
/* The same; check false: a cold entity interned on the way takes the file's state unverified
 * (recovery loading the newest segment's events: a check each would cost a frame read per
 * entity at open). */
int64_t bp_index_entity_ex(bp_index *x, const char *name, size_t len, bool check);
/* The same for the entity of an event with clock and prev hash prev (recovery loading it):
 * a cold entity whose file state that event continues is taken unverified (its link proves
 * it), any other verified as bp_index_entity does. */
int64_t bp_index_entity_next(bp_index *x, const char *name, size_t len, uint64_t clock,
                             const bp_hash *prev);
/* Set the cold directory of an index that holds anchors (and scopes) only: d (whose bytes the
 * caller keeps mapped) is searched in place from now on. The anchored entities it lists are
 * interned now; *events receives the events its clocks count past their anchors. 0, -ENOMEM,
 * or -EINVAL (an anchored entity not past its anchor; the index unchanged but for room). */
int bp_index_cold_set(bp_index *x, const bp_entdir *d, uint64_t *events);
/* Entry i of the cold directory c (in name order): its name, clock and (when head is not
 * NULL) head. */
void bp_index_cold_entry(const bp_index_cold *c, uint32_t i, const char **name, uint8_t *len,
                         uint64_t *clock, bp_hash *head);
/* The state of an entity interned from the cold directory at a lookup (not by
 * bp_index_cold_all) comes from verify(ctx, ...) when it can tell (none: clock 0). */
void bp_index_cold_verify(bp_index *x, bp_cold_verify_fn verify, void *ctx);
/* Intern every entity of the cold directory and drop it (the index alone answers again):
 * with the index held exclusively. 0 or -ENOMEM (some interned, the directory kept). */
int bp_index_cold_all(bp_index *x);
/* Drop the cold directory (bp_index_free does; nothing is interned). */
void bp_index_cold_drop(bp_index *x);
/* Every entity the index knows: those in entity_names and the cold directory's others. */
uint64_t bp_index_entity_count(const bp_index *x);
/* Slot committed under an idempotency key, or -1. */
int64_t bp_index_find_idem(const bp_index *x, const char *key, size_t len);
/* Clock of the event at slot, which is at or above list_base (its entity's base + tier + its
 * position in the entity's list + 1). */
uint64_t bp_index_clock_of(const bp_index *x, uint32_t slot);
/* The clock of entity e's newest event (0 when it has none and no anchor). */
static inline uint64_t bp_index_head_clock(const bp_index *x, int64_t e) {
    return e < 0 ? 0 : x->entities[e].base + x->entities[e].tier + x->entities[e].slots.n;
}
/* The tier's records back in memory: below holds the records of slots 0 .. rbase - 1 (holes
 * zeroed with their segno; entities and scopes numbered as this index does) and is the
 * index's now (freed on failure; NULL when rbase is 0). Then every slot below list_base back
 * into the entity, scope and kind lists, tiers to 0, list_base to 0: the index alone answers
 * again. 0, or -ENOMEM: when the records could not be placed nothing changed; else the lists
 * done so far are whole (their entities' tiers 0) and list_base stays, which readers handle
 * (an entity's tier, not list_base, says where its list starts). */
int bp_index_untier(bp_index *x, bp_irec *below);
/* The six tier grows over the slots [bounds[0], bounds[nb]) (bounds[0] == rbase == list_base,
 * ascending, bounds[nb] <= n): sealed segments, one slot range each, whose index files now
 * answer for them. What an open would make of them: their records, ids, idempotency keys and
 * list entries leave memory (each entity's tier counts its events that left its list), each
 * range joins noid (a range already there, a segment whose ids its file answered for, stays
 * one), and rbase and list_base move to bounds[nb]. Heads, clocks, entity and scope names and
 * hole counts are unchanged. 0, -ENOMEM or -EINVAL (bounds that do not fit, an existing noid
 * range across them); on failure nothing changed. */
int bp_index_retier(bp_index *x, const uint64_t *bounds, uint32_t nb);
/* The noid range that ends at at and the one that starts there become one (a segment whose
 * tier grew past a piece: its ids are placed as one range when its file cannot answer). */
void bp_index_noid_join(bp_index *x, uint64_t at);
/* Append holes until x->n == upto (nothing when x->n >= upto), counted in segment segno (so
 * that recs[].segno stays ascending). 0 or -ENOMEM / -EOVERFLOW. */
int bp_index_holes(bp_index *x, uint64_t upto, uint32_t segno);
/* Start entity name's chain at an anchor (before any of its events is inserted): base =
 * clock, head = hash. 0, -ENOMEM, or -EINVAL when the entity already has events. */
int bp_index_anchor(bp_index *x, const char *name, size_t len, uint64_t clock, const bp_hash *hash);
/* The list of kind's slots, made (empty) if the index has none: NULL when out of memory. */
bp_u32vec *bp_index_kind_vec(bp_index *x, uint16_t kind);
/* Approximate heap bytes held. */
uint64_t bp_index_bytes(const bp_index *x);

/* Index-block views for checkpoints: export the whole index (first_seq 1)
 * or a slot range [from, to) (used for segment footers). Holes are left out; a range with
 * holes gets a seqs array. The block borrows the index's strings; free with
 * bp_index_block_release. */
int bp_index_export(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out);
/* The same block to encode only (bp_footer_encode, bp_ckpt_encode): a range without holes
 * lends the index's records instead of copying them (the block's emap and smap renumber
 * their entities and scopes). Valid while the index does not change. */
int bp_index_export_view(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out);
/* The view of slots [from, to) for a segment index file (any range: its entity heads are not
 * set), and each block entity's clock at its first record there (*first_clock, malloc'd).
 * 0 or -ENOMEM. */
int bp_index_export_six(const bp_index *x, uint64_t from, uint64_t to, bp_iblock *out,
                        uint64_t **first_clock);
void bp_index_block_release(bp_iblock *blk);

/* For index_tier.c: 0 if the n ids in map (each < universe) are distinct, -EINVAL if one
 * repeats, -ENOMEM; room for one more noid range, 0 or -ENOMEM. */
int bp_index_distinct(const uint32_t *map, uint32_t n, uint32_t universe);
int bp_index_noid_room(bp_index *x);
/* For index_tier.c: place slot's id in the open-addressed table tab of cap entries (a power of
 * two with room). */
void bp_index_idtab_place(uint32_t *tab, uint64_t cap, const bp_id *id, uint32_t slot);

#endif
