/** @file
 * batpak/read.h — reading events: get by id, stream, scope, kind, region queries.
 *
 * All read functions are safe from any thread while appends go on. A reader
 * sees only published events (nothing above the publish watermark), and an
 * iterator sees the events published when it was created (a stable snapshot
 * of the index; later appends do not appear in it).
 */
#ifndef BATPAK_READ_H
#define BATPAK_READ_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A decoded event. Pointer fields point into memory owned by whatever
 * produced the event (a bp_event from bp_get is freed with bp_event_free; one
 * from an iterator is valid until the next bp_iter_next or bp_iter_free).
 * entity, scope and idempotency_key are NUL-terminated.
 *
 * The payload may point straight into the segment file's read-only mapping
 * (no copy): the event keeps that mapping alive for its whole lifetime, so it
 * stays valid whatever bp_compact or the store's segment cache do meanwhile
 * (a segment compacted away is unmapped when the last event read from it is
 * released). Do not write through it; holding events for long keeps the
 * mappings (address space, not descriptors) of replaced segments.
 */
typedef struct bp_event {
    bp_id event_id;       /**< the event's id (UUIDv7) */
    bp_id correlation_id; /**< the append's correlation id; the event's own id when it gave none */
    bp_id causation_id;   /**< valid when has_causation */
    bool has_causation;   /**< the append gave a causation id */
    uint64_t global_seq;  /**< position in the store, from 1 */
    uint64_t clock;       /**< position in the entity's chain, from 1 */
    uint64_t hlc;       /**< hybrid logical clock of the commit (BP_HLC_WALL_MS / BP_HLC_LOGICAL) */
    uint16_t kind;      /**< the event's kind (BP_KIND) */
    uint16_t flags;     /**< bits 0-7: schema version (BP_EVENT_SCHEMA_VERSION); BP_EVENT_SEALED */
    bp_hash prev_hash;  /**< zeros for an entity's first event */
    bp_hash event_hash; /**< BLAKE3 of the event (doc/FORMAT.md "Event hash") */
    const char *entity; /**< the event's entity */
    const char *scope;  /**< the event's scope */
    const char *idempotency_key; /**< NULL when none */
    uint64_t batch_id;           /**< 0 when not part of a batch; else the batch's first seq */
    uint32_t batch_index;        /**< position in its batch, from 0 (0 when not in a batch) */
    uint32_t batch_count;        /**< events in its batch (0 when not in a batch) */
    const uint8_t *payload;      /**< NULL when the read did not ask for payloads */
    size_t payload_len;          /**< bytes at payload (0 when payload is NULL) */
    bool header_only;            /**< only index fields are set (see BP_READ_INDEX_ONLY) */
    bool payload_forgotten;      /**< the payload was sealed with a data key that bp_forget
                                      destroyed: payload is NULL, payload_len 0, for good */
} bp_event;

/** flags bit: the payload is sealed with its entity's data key (bp_forget). */
#define BP_EVENT_SEALED 0x0100u

/** Read flags. */
#define BP_READ_FULL 0u /**< read each frame from disk: every field and the payload */
#define BP_READ_INDEX_ONLY                                                                         \
    1u /**< no disk I/O: event_id, global_seq, clock, hlc, kind,                                   \
            flags, entity, scope only */
#define BP_READ_SEALED                                                                             \
    2u /**< sealed payloads as stored (key id, nonce, ciphertext),                                 \
            not opened: what export and replication carry */

/**
 * Get one published event by id. out receives a heap event, valid (payload
 * included) until bp_event_free, whatever compaction does meanwhile.
 * Errors: BP_ENOTFOUND, BP_ECORRUPT (frame on disk fails its CRC), BP_EIO.
 */
BP_API bp_status bp_get(bp_store *s, bp_event **out, const bp_id *id);
/** Free an event returned by bp_get (not one from an iterator or cursor). Accepts NULL. */
BP_API void bp_event_free(bp_event *ev);

/** A filter over the index. Zero/NULL fields do not filter. */
typedef struct bp_region {
    uint32_t struct_size;      /**< sizeof(bp_region), set by BP_REGION_INIT */
    const char *entity;        /**< exact entity */
    const char *entity_prefix; /**< entity starts with */
    const char *scope;         /**< exact scope */
    const uint16_t *kinds;     /**< any of these kinds */
    size_t n_kinds;            /**< entries in kinds (0: any kind) */
    int category;              /**< -1: any; 0..15: kind category */
    uint64_t from_seq;         /**< global_seq >= (0 = from the start) */
    uint64_t to_seq;           /**< global_seq <= (0 = no bound) */
    uint64_t since_ms;         /**< HLC wall ms >= (0 = no bound) */
    uint64_t until_ms;         /**< HLC wall ms <= (0 = no bound) */
} bp_region;

/** A region that matches every event (category -1: any). */
#define BP_REGION_INIT                                                                             \
    { (uint32_t)sizeof(bp_region), NULL, NULL, NULL, NULL, 0, -1, 0, 0, 0, 0 }

/**
 * An iterator over the events published when it was made (bp_query, bp_stream, bp_by_scope,
 * bp_by_kind). Opaque; used by one thread at a time, advanced only while its store is open,
 * freed with bp_iter_free.
 */
typedef struct bp_iter bp_iter;

/**
 * Iterate the published events matching region in global_seq order (for an
 * exact entity this is also clock order). flags: BP_READ_FULL or
 * BP_READ_INDEX_ONLY. The iterator holds no lock between calls.
 * Resuming: set region->from_seq = bp_iter_position(it) + 1.
 * Errors: BP_EINVAL (bad region), BP_ENOMEM.
 */
BP_API bp_status bp_query(bp_store *s, bp_iter **out, const bp_region *region, unsigned flags);

/** Events of one entity in clock order. An unknown entity yields an empty iterator. */
BP_API bp_status bp_stream(bp_store *s, bp_iter **out, const char *entity, unsigned flags);
/** Events of one scope, in global_seq order. */
BP_API bp_status bp_by_scope(bp_store *s, bp_iter **out, const char *scope, unsigned flags);
/** Events of one kind, in global_seq order. */
BP_API bp_status bp_by_kind(bp_store *s, bp_iter **out, uint16_t kind, unsigned flags);

/**
 * Advance: *ev receives the next event (valid until the next call) and
 * BP_OK is returned; BP_DONE when finished; an error (BP_ECORRUPT, BP_EIO)
 * if a frame cannot be read — the iterator can be advanced past it.
 */
BP_API bp_status bp_iter_next(bp_iter *it, const bp_event **ev);
/** global_seq of the last event returned (0 before the first). */
BP_API uint64_t bp_iter_position(const bp_iter *it);
/** Free the iterator and the event it returned last. Accepts NULL. */
BP_API void bp_iter_free(bp_iter *it);

/** Which links bp_walk_ancestors follows. */
typedef enum bp_walk_mode {
    BP_WALK_CHAIN = 0,    /**< the entity's hash chain: its previous event, then that one's... */
    BP_WALK_CAUSATION = 1 /**< causation links: the event that caused it, then that one's cause...
                               (across entities) */
} bp_walk_mode;

/** Called for each ancestor, nearest first; depth 1 is the start event's parent. Return
 * BP_OK to go on, BP_DONE to stop (the walk returns BP_OK), an error to stop with it. */
typedef bp_status (*bp_walk_fn)(void *ctx, const bp_event *ev, uint32_t depth);

/**
 * Walk back from event id (not included) to at most limit ancestors (0: all),
 * calling fn with each (payload included; valid during the call). A chain walk
 * checks every link: each ancestor must hash to the prev_hash of the event
 * after it (BP_ECORRUPT names the entity and clocks otherwise); it ends at the
 * entity's first event. A causation walk ends at an event with no causation id
 * or whose cause is not in this store.
 * Errors: BP_EINVAL, BP_ENOTFOUND (no such published event), BP_ECORRUPT, BP_EIO,
 * BP_ENOMEM, or fn's error.
 */
BP_API bp_status bp_walk_ancestors(bp_store *s, const bp_id *id, bp_walk_mode mode, size_t limit,
                                   bp_walk_fn fn, void *ctx);

/**
 * Current head of an entity for writers: its clock (0 if unknown) and the hash of its last
 * event (clock or hash may be NULL). The head is the entity's last event written; while an
 * append to it is still waiting for its group commit's sync, the call waits for that sync
 * (and so the event is published: bp_stream shows it when this returns). While another
 * thread holds the entity's turn after a lost CAS race, the call waits for it first (store.h,
 * "Optimistic concurrency"). On a fail-stopped store it returns what was published.
 * Errors: BP_EINVAL (NULL store or entity, invalid name), BP_EIO, BP_ENOMEM.
 */
BP_API bp_status bp_entity_head(bp_store *s, uint64_t *clock, bp_hash *hash, const char *entity);

/** One entity (bp_entities_list). Since 1.1. */
typedef struct bp_entity_info {
    uint32_t struct_size;        /**< sizeof(bp_entity_info): BP_ENTITY_INFO_INIT */
    char name[BP_COORD_MAX + 1]; /**< the entity, NUL-terminated */
    uint64_t events;             /**< its published events (those compacted away not counted) */
    uint64_t clock;              /**< its published head clock (bp_entity_head's, published) */
} bp_entity_info;

/** Sets struct_size; the library fills the rest. */
#define BP_ENTITY_INFO_INIT                                                                        \
    { (uint32_t)sizeof(bp_entity_info), {0}, 0, 0 }

/**
 * The entities whose names begin with prefix (NULL or "": every one), in bytewise order of
 * their names, from the first after the name `after` (NULL: from the first): at most max of
 * them into out (out[0].struct_size set by BP_ENTITY_INFO_INIT gives the stride), how many
 * into *n. *n == max may leave more: call again with after = the last name. An entity whose
 * events are all unpublished is left out; one whose events were all compacted away is listed
 * with events 0. No event is read: the names are sorted once per open (and the new ones as
 * they come). Safe from any thread while appends go on. Since 1.1.
 * Errors: BP_EINVAL (NULL store or n, out NULL with max > 0, out[0].struct_size unknown),
 * BP_ENOMEM.
 */
BP_API bp_status bp_entities_list(bp_store *s, const char *prefix, const char *after,
                                  bp_entity_info *out, size_t max, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
