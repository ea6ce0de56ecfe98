/*
 * store.h — the store's narrow interface to the modules built on it (src/guard, src/typed,
 * src/deliver, src/replicate, src/api; doc/API.md "Layers"). It is the only store header
 * they include: to them bp_store is an incomplete type, and they use the public API
 * (include/batpak) plus what is declared here. store_impl.h, the store's own header,
 * includes this one.
 *
 * Locks a module meets through these calls (store_impl.h states the store's own rules):
 *  - ilock (the index): the calls that say "takes ilock" hold it shared for a moment and
 *    never on return. A module never holds it.
 *  - the notification lock (pmu): bp_wait_until holds it while it calls ready() and
 *    sleeps; bp_publish_notify and bp_wake_waiters take it for a moment. A module never
 *    holds it: flags its waiters test are atomics, set before bp_wake_waiters.
 *  - the publish lock (the store's write mutex): the store holds it while it runs the
 *    publish hook; a module takes it (bp_store_publish_lock) only to change what its hook
 *    reads, and the bp_store_seq_match / bp_store_notice calls run under it.
 *  - A module never holds a mutex of its own across bp_wait_until; ready() takes none.
 */
#ifndef BP_STORE_H
#define BP_STORE_H

#include "format/format.h"
#include "platform/platform.h"

struct bp_segfile;

/* ------------------------------------------------------------------ modules */

/*
 * The layers built on the store (signing, typed payloads, delivery: src/api/open.c lists
 * them) are modules: the store keeps one state pointer for each and calls its hooks at the
 * points below, and knows nothing else of them. Any hook may be NULL.
 */
typedef struct bp_store_module {
    const char *name;
    /* During the open, after recovery and before the data keys are set up. *state starts
     * NULL; whatever the hook leaves there is given to on_free, also when it fails. */
    bp_status (*on_open)(bp_store *s, const bp_open_options *o, void **state);
    /* Close and teardown (also of a failed open), before the final sync: stop the module's
     * threads. May run twice; modules are stopped in the reverse of their order. */
    void (*on_stop)(bp_store *s, void *state);
    /* A clean close of a writable store that has not failed, after every on_stop. */
    void (*on_flush)(bp_store *s, void *state);
    /* Last: free the state (called only when it is not NULL). */
    void (*on_free)(void *state);
    /* The entity's derived state is no longer valid (bp_forget, compaction). */
    bp_status (*on_forget)(bp_store *s, void *state, const char *entity);
    /* The writer's figures for readers of other processes (DIR/LIVE): add the module's to
     * figs (BP_STORE_MOD_FIGS words, shared by the modules: each owns its own). Called by
     * the writer while it publishes (at most every 10 ms), holding the write lock: it must
     * not wait for a lock another thread may hold while it appends (a trylock may skip a
     * round). NULL: none. */
    void (*on_figures)(bp_store *s, void *state, uint64_t *figs);
} bp_store_module;
#define BP_STORE_MOD_FIGS 6
/* A read-only handle: the module figures (BP_STORE_MOD_FIGS words) the writer holding the
 * store now last wrote; false when no live writer of this library's version gives any
 * (figs zeroed). No lock held. */
bool bp_store_writer_mod_figures(bp_store *s, uint64_t *figs);
#define BP_STORE_MODULES_MAX 4

/* open.c: bp_store_open with the modules mods[0..n) (n <= BP_STORE_MODULES_MAX), and the
 * platform layer's fault hook (NULL but in tests: bp__store_open_fault). */
bp_status bp_store_open_with(bp_store **out, const char *dir, const bp_open_options *opts,
                             bp_fault *fault, const bp_store_module *const *mods, size_t n);
/* The state of the i-th module given to bp_store_open_with (NULL before its on_open). No
 * lock. */
void *bp_store_module_state(const bp_store *s, size_t i);
/* In on_open only: sign each append's receipt with fn(ctx, receipt), outside every lock. */
void bp_store_set_sign_hook(bp_store *s, void (*fn)(void *ctx, bp_receipt *r), void *ctx);

/* ------------------------------------------------------------ the handle */

/* The store was opened read-only. No lock. */
bool bp_store_read_only(const bp_store *s);
/* The platform layer's fault hook to pass to bp_pf_* writes (NULL but in tests). No lock. */
bp_fault *bp_store_fault(const bp_store *s);

#define BP_LAT_BUCKETS 512
/* Upper bound (inclusive, µs) of append-latency bucket b: buckets 0..7 are 0..7 µs, then 8
 * per power of two (write.c record_latency fills them; stats and metrics read them). */
static inline uint64_t bp_lat_bucket_upper(unsigned b) {
    if (b < 8) return b;
    unsigned lg = b / 8 + 2, sub = b % 8;
    return ((uint64_t)(8 + sub + 1) << (lg - 3)) - 1;
}
/* The append latencies counted so far, per bucket, and their sum in µs (atomic loads). */
void bp_store_latency(const bp_store *s, uint64_t counts[BP_LAT_BUCKETS], uint64_t *sum_us);
/* A read-only handle beside a live writer (another process): the writer's counts and sum
 * instead (DIR/LIVE); false, nothing set, when there is none. */
bool bp_store_writer_latency(bp_store *s, uint64_t counts[BP_LAT_BUCKETS], uint64_t *sum_us);

/* ------------------------------------------- the publish watermark, and waiting on it */

/* The publish watermark: the highest global_seq readers see. An atomic (sequentially
 * consistent) load, no lock. */
uint64_t bp_store_published(const bp_store *s);
/* notify.c: wait until ready(arg) or the deadline (bp_pf_mono_us): true when ready. ready
 * runs under the notification lock each time the watermark moves or a waiter is woken: it
 * reads atomics only (no lock, no call into the store). */
bool bp_wait_until(bp_store *s, bool (*ready)(void *arg), void *arg, uint64_t deadline_us);
/* notify.c: wake the waiters after a flag their ready() tests changed (a stop flag): store
 * the flag first. Takes the notification lock. */
void bp_wake_waiters(bp_store *s);
/* notify.c: the same, but cheap when no thread waits (the publish path, a worker's
 * progress). */
void bp_publish_notify(bp_store *s);

/* ------------------------------------------- the publish hook (lossy subscriptions) */

/* Take / release the publish lock (the store's write mutex), for the data the publish hook
 * reads only: never across a wait, an append or a read of the store. */
void bp_store_publish_lock(bp_store *s);
void bp_store_publish_unlock(bp_store *s);
/* [publish lock] Call fn(ctx, s, from, to) each time the watermark moves, with the seqs
 * newly published, under the publish lock; fn NULL: no more. */
void bp_store_set_publish_hook(bp_store *s,
                               void (*fn)(void *ctx, bp_store *s, uint64_t from, uint64_t to),
                               void *ctx);

/* A validated copy of a bp_region (region.c). */
typedef struct bp_rfilter {
    char *entity, *prefix, *scope;
    size_t prefix_len;
    uint16_t *kinds;
    size_t n_kinds;
    int category;
    uint64_t from_seq, to_seq, since_ms, until_ms;
} bp_rfilter;
bp_status bp_rfilter_init(bp_rfilter *f, const bp_region *r); /* BP_EINVAL / BP_ENOMEM */
void bp_rfilter_free(bp_rfilter *f);
/* [publish lock] (in the publish hook): does the event at seq (published) pass f? */
bool bp_store_seq_match(bp_store *s, uint64_t seq, const bp_rfilter *f);
/* [publish lock] (in the publish hook): the notice of the event at seq; its strings are the
 * index's, valid until the store is closed. */
void bp_store_notice(bp_store *s, uint64_t seq, bp_notice *out);

/* ------------------------------------------------------------- the index */

/* An entity as the index has it. */
typedef struct bp_entity_view {
    int64_t eid;    /* its id in the index (stable while the store is open), or -1 */
    uint64_t base;  /* the clock its compacted-away prefix ends at (0: none) */
    uint64_t clock; /* its published head: base + its published events */
} bp_entity_view;
/* The entity named by len bytes at entity: true, or false with eid -1 and clocks 0 when the
 * store has none of its events. Takes ilock. */
bool bp_store_entity(bp_store *s, const char *entity, size_t len, bp_entity_view *out);
/* The slots (global_seq - 1) of entity eid's published events with clocks from + 1 on, in
 * clock order, at most max, into slots and their kinds into kinds (may be NULL); *n how
 * many. BP_ECONFLICT when from is below the entity's base (a compaction removed the event
 * at from + 1). Takes ilock. */
bp_status bp_store_entity_slots(bp_store *s, int64_t eid, uint64_t from, uint64_t *slots,
                                uint16_t *kinds, size_t max, size_t *n);
/* slot.c: the hash of entity eid's published event at clock, read from its frame.
 * BP_ENOTFOUND when there is none (compacted away, or not yet published). Takes ilock. */
bp_status bp_store_entity_hash(bp_store *s, int64_t eid, uint64_t clock, bp_hash *out);
/* seq names a hole: an event a compaction removed (within DIR/ANCHORS's range). Takes
 * ilock. */
bool bp_store_seq_is_hole(bp_store *s, uint64_t seq);
/* The id of the newest published event that is not a hole into *out: false (out unchanged)
 * when there is none. Takes ilock. */
bool bp_store_last_id(bp_store *s, bp_id *out);
/* The last global_seq of the compacted range (DIR/ANCHORS), 0 when none. Takes ilock. */
uint64_t bp_store_compacted_upto(bp_store *s);

/* ------------------------------------------------------------ reading */

/* An event with room for its strings and its frame bytes. Zero frame, plain and hold before
 * its first use; bp_owned_event_clear releases them. */
typedef struct bp_owned_event {
    bp_event ev;
    bp_buf frame;
    bp_buf plain;            /* an unsealed payload */
    struct bp_segfile *hold; /* the segfile ev's bytes point into, or NULL */
    char ebuf[BP_COORD_MAX + 1], sbuf[BP_COORD_MAX + 1], ibuf[BP_IDEMPOTENCY_KEY_MAX + 1];
} bp_owned_event;
/* read.c: drop o's reference to a segment and free its buffers (o itself is the caller's). */
void bp_owned_event_clear(bp_owned_event *o);

/* What bp_slot_read reads (or-ed). */
#define BP_SLOT_HASH 1u         /* out->hash: the event's hash */
#define BP_SLOT_BODY 2u         /* *out->body: a copy of the frame's body (what a relay sends) */
#define BP_SLOT_EVENT 4u        /* *out->ev: the event, its sealed payload opened */
#define BP_SLOT_SEALED 8u       /* with EVENT: leave a sealed payload sealed (BP_READ_SEALED) */
#define BP_SLOT_UNPUBLISHED 16u /* the slot may be above the watermark (the writer only) */
typedef struct bp_slot {
    bp_hash hash;       /* out: HASH */
    bp_buf *body;       /* in: the buffer BODY fills (its bytes replaced) */
    bp_owned_event *ev; /* in: the event EVENT fills; it keeps its segment's mapping, which
                           its payload may point into, until the next read into it or
                           bp_owned_event_clear */
} bp_slot;
/* slot.c: read the frame of the event at slot (global_seq - 1), check it (length, CRC, event
 * id) and give what how asks. BP_ENOTFOUND when there is no such published event (a hole,
 * past the end, above the watermark); BP_EIO / BP_ECORRUPT from the segment; BP_ENOMEM; with
 * EVENT, BP_ECORRUPT when a sealed payload fails authentication. Takes ilock; no other lock
 * held on entry but, with UNPUBLISHED, the writer's. */
bp_status bp_slot_read(bp_store *s, uint64_t slot, unsigned how, bp_slot *out);
/* read.c: the body of the frame at global_seq seq copied into out (bp_slot_read BODY): the
 * bytes a relay publishes. BP_ENOTFOUND for an unpublished seq or a hole. */
bp_status bp_read_body(bp_store *s, uint64_t seq, bp_buf *out);
/* read.c: the store an iterator reads. */
bp_store *bp_iter_store(const bp_iter *it);

/* ------------------------------------------------------------ writing */

/* write.c: internal append used for system events (reserved coordinates allowed). No lock
 * held. */
bp_status bp_append_system(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                           uint16_t kind, const void *payload, size_t len, bp_durability dur);
/* write.c: check one append item (coordinate, kind, payload size, options) as an append
 * would; i and batch only shape the message. No lock. */
bp_status bp_validate_item(const bp_store *s, const bp_batch_item *it, bool system, size_t i,
                           bool batch);
/* dkeys.c: zero memory the compiler may not elide. */
void bp_wipe(void *p, size_t n);

/* ------------------------------------------------------------ replication */

/* export.c: import one frame body (as bp_read_body gives it) like one export line: its hash
 * is checked and it joins the importer's group. Events at a seq below the importer's next
 * one are compared with what the store (or the group) holds there: the same event is
 * skipped (a resend), another one is BP_ECONFLICT. Errors name it "stream sequence POS". */
bp_status bp_import_frame(bp_importer *imp, const void *body, size_t len, uint64_t pos);
/* export.c: true while the importer holds part of a batch (bp_import_end would refuse). */
bool bp_import_in_batch(const bp_importer *imp);
/* export.c: the anchors record of an export of s (FORMAT.md "Export"), without a newline,
 * into out (appended), and *upto; BP_DONE (out unchanged) when s has no anchors. */
bp_status bp_anchors_record(bp_store *s, bp_buf *out, uint64_t *upto);
/* export.c: the follower's import of a relayed anchors message (the body: an export's
 * anchors record). strict: a store that is not empty refuses it (an import); else such a
 * store ignores it (*installed false: a follower that holds the events already). */
bp_status bp_import_anchors(bp_importer *imp, const void *body, size_t len, uint64_t pos,
                            bool strict, bool *installed);

#endif
