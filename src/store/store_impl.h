/*
 * store_impl.h — the store handle and the functions the store's own sources share. The
 * modules built on the store never include it: they use store/store.h, which this includes.
 *
 * Locks (always taken in this order): wmu (writer state) -> ilock (index), and
 *  - wmu guards every field marked [w]. Appenders hold it while they validate,
 *    encode and write; a group-commit leader drops it during fdatasync.
 *  - pmu (publish notifications, watchers, workers, fences, CAS turns) is taken under
 *    wmu, never the other way round.
 *  - ilock (rwlock) guards the index, segs[] and published [i]. Writers hold
 *    it exclusively only to insert/publish; readers share it.
 * Invariants:
 *  - published <= written_seq == idx.n (unless failed); nothing above
 *    published is visible to readers.
 *  - synced_seq <= written_seq; every event <= synced_seq is on stable storage.
 *  - segs[i].segno == segs[0].segno + i; only segs[n_segs-1] is unsealed.
 */
#ifndef BP_STORE_IMPL_H
#define BP_STORE_IMPL_H

#include "core/core.h"
#include "format/format.h"
#include "format/six.h"
#include "platform/platform.h"
#include "store/index.h"
#include "store/store.h"

#include <pthread.h>

/*
 * Segment files and their lifetime (segfile.c).
 *
 * A reader never uses the writer's descriptor: it reads a segment through a bp_segfile, a
 * reference-counted read-only view of the file: a shared mapping (len bytes from offset 0)
 * and, when the mapping may not cover every frame, a descriptor for pread.
 *  - The store holds one reference to the segfile in segs[i].rd while it caches it; every
 *    reader holds one more while it reads, and an event handed out (bp_get, an iterator's
 *    current event, an ancestor walk's) keeps its reference for as long as its payload may
 *    point into the mapping. The last unref unmaps and closes: compaction or cache eviction
 *    only drops the store's reference, so it never waits for a reader or for the user, and a
 *    held event stays readable after its segment was compacted away.
 *  - segs[i].rd goes from NULL to a segfile by CAS under ilock shared (a reader opening it on
 *    demand), and back to NULL only under ilock exclusive (eviction, rotation, compaction):
 *    so a reader that loaded it under ilock shared may take a reference (the store's is
 *    still there).
 *  - Descriptors: a segfile of a segment that cannot grow (not the last one of a writable
 *    store) maps the file's exact size and closes its descriptor at once; only the active
 *    segment's segfile, and one whose mapping failed (pread fallback), keep a descriptor.
 *    The cache holds at most sf_max segfiles (mappings: address space, vm.max_map_count)
 *    and at most sf_fd_max of them with a descriptor (a fraction of RLIMIT_NOFILE, at most
 *    64); a reader that goes over sets sf_trim and bp_segref_done evicts (clock order) the
 *    least recently used ones under ilock exclusive, never the active segment nor one a
 *    compaction is still renaming in (rd_keep).
 *  - Segments are opened by name: a compaction's new files replace files of the same names,
 *    so it installs segfiles made from its new files before readers see the new segments,
 *    and keeps them cached until the renames are done.
 *  - The writer's descriptor (bp_segment.f) is open only for the active segment (and for
 *    each segment while recovery reads it): sealing closes it, or hands it to close_later
 *    while a group-commit leader may be in fdatasync on a copy of it.
 * So the store holds O(1) descriptors of its own whatever the number of segments: the lock
 * file, the active segment's two, at most sf_fd_max cached, plus one at a time in verify,
 * snapshot, compaction and recovery.
 */
typedef struct bp_segfile {
    uint32_t refs; /* atomic */
    uint32_t segno;
    int fd;           /* read-only descriptor, or -1 when the mapping covers the whole file */
    const uint8_t *p; /* read-only shared mapping of len bytes, or NULL: read with pread */
    uint64_t len;     /* may run past the end of the active segment's file: only published
                         frames, written before they were published, are touched */
} bp_segfile;
void bp_segfile_unref(bp_segfile *f); /* NULL is fine; the last one unmaps and closes */

typedef struct bp_segment {
    uint32_t segno;
    bp_file f;           /* [w] the writer's descriptor: open only while active (see above) */
    uint64_t size;       /* [w] end of the last frame written (or footer end when sealed) */
    uint64_t wb_from;    /* [w] the active segment's bytes before this were handed to the
                            device's writeback (bp_pf_writeback), not necessarily synced */
    uint64_t zero_end;   /* [w] the active segment's file holds zeros from size up to here
                            (bp_segment_zero_ahead), or zero_end <= size: nothing past size.
                            Sealed segments and a closed store's files end at size. */
    uint64_t first_slot; /* slot of its first event */
    bool sealed;
    uint8_t rd_used; /* atomic: read since the eviction clock last passed */
    bool rd_keep;    /* [i] a read-only handle's sealed segment (bp_live_pin), or a
                        compaction's new segment not yet renamed to its name: rd, made
                        from its .compact file, is not evicted (a reader would open the
                        replaced file of the same name) */
    bp_segfile *rd;  /* atomic: the cached reader's view, or NULL (see above) */
    /* [i] its segment index file (sixfile.c), mapped when open found it current, or NULL;
     * unmapped only when the segment leaves the store (close, compaction) */
    struct bp_sixmap *six;
    bool ids_six;  /* [i] idtab leaves this segment's ids out: six answers for them */
    bool six_tier; /* [i] the scope and kind lists leave its slots out (segs[0..n_six)) */
    /* [i] 0, or (a read-only handle's newest tier segment, not sealed when it opened) the slot
     * where its index file, a piece (piece.c), ends: the slots from there on are in memory */
    uint64_t six_end;
    uint8_t six_bad; /* atomic: a reader found six unusable (a damaged block, or an answer
                        the index contradicts): bp_six_repair places the ids in idtab */
} bp_segment;

/* How a reader gets at a segment's bytes: a reference to its segfile (or the error that
 * opening it gave), held from bp_segment_ref to bp_segref_done or bp_segref_keep. */
typedef struct bp_segref {
    bp_segfile *sf;
    int err;     /* -errno when the segment could not be opened (sf NULL) */
    bool mapped; /* set by bp_read_frame: the frame it decoded points into sf's mapping */
} bp_segref;
#define BP_SEGREF_INIT                                                                             \
    { NULL, 0, false }

/* A clean close seals the active segment when its frames fill at least this much and 1/16
 * of segment_size (open.c seal_at_close): the newest segment an open reads into memory. */
#define BP_CLOSE_SEAL_MIN (1u << 20)

/* DIR/LOCK's bytes 1 .. BP_READER_SLOTS: one byte lock per read-only handle that can take one
 * (doc/FORMAT.md "Processes"); more readers than that read uncounted. */
#define BP_READER_SLOTS 4096
/* How far ahead an entity's reader asks the CPU for what it reads (read.c and tier.c
 * prefetch_ahead): the index record 2 * BP_READ_AHEAD events on, the frame BP_READ_AHEAD
 * events on. A stream's frames lie scattered over the segments; asking early lets memory
 * fetch several at once. */
#define BP_READ_AHEAD 6
/* Longest a group-commit leader waits for appenders about to write before fdatasync
 * (bp__group_wait_us: tests raise it). */
#define BP_GROUP_WAIT_US 200
/* The newest records a handle keeps in memory when sealed segments move to the six tier
 * (and at least the newest segment's): a read of them stays a lookup in memory (get by id
 * ~1.4 us, an index-only stream without frame reads, as SPEC's targets measure them in the
 * session that appended them), and memory stays bounded however long the handle stays open
 * (measured: about 60 MB of index with 100-byte payloads over 100,000 entities). */
#define BP_HOT_EVENTS (1u << 19)
/* Zero-fill ahead of the active segment's end (bp_segment_zero_ahead): a chunk at a time,
 * when less than BP_ZERO_AHEAD_MIN is left. */
#define BP_ZERO_CHUNK (256u << 10)
#define BP_ZERO_AHEAD_MIN (128u << 10)
/* ... and only for group commits of at most this many bytes: a larger sync is dominated by
 * writing its data, so zeros would double the bytes written for little time saved (measured:
 * batches of 256 events of 100 bytes wrote 6.4 times the bytes with zeros ahead). */
#define BP_ZERO_GROUP_MAX (32u << 10)
/* Frames written without a sync are handed to the device's writeback every this many bytes
 * (write.c): the fdatasync that seals the segment then finds little left to write, and the
 * appends it holds up wait less (no durability changes: only a sync makes bytes durable). */
#define BP_WRITEBACK_CHUNK (4u << 20)

struct bp_store {
    char *dir;
    char *segdir;
    bp_open_options opts;
    bp_fault *fault; /* the platform layer's fault hook: NULL but in tests (bp__store_open_fault) */
    bool read_only;
    bp_file lock;
    bp_file rdslot; /* a read-only handle's byte lock among DIR/LOCK's readers (open.c),
                       fd -1 when not registered (no LOCK, or a read-only medium) */
    /* DIR/LIVE (live.c): the writer's page shared with the readers of other processes, or a
     * reader's view of it (writable when the file opens for writing: the follower counts
     * itself among its sleepers); NULL when there is none. A reader maps it under wmu (set
     * once, with an atomic store: its follower thread loads it without wmu) and follows its
     * mark under wmu (bp_store_refresh), which it uses for nothing else. */
    uint8_t *live;
    bool live_rw;
    int live_err;      /* the writer's: -errno when it could not set up its page */
    uint64_t live_gen; /* the writer's generation; a reader's: the one its view was made under
                          (at its open, or its last reload: live.c) */
    uint32_t live_compactions; /* [w] the writer's count of compactions (DIR/LIVE); a
                                  reader's: as of its view */
    uint64_t reload_after;     /* [w] a reader: no reload before (bp_pf_mono_us) */
    uint32_t reload_fails;     /* [w] a reader: reloads that failed since the last made */
    bp_status reload_rc;       /* [w] a reader: and once they are RELOAD_FAILS_MAX, the last */
    char reload_msg[300];      /* [w] error, which every refresh reports until a view is made */
    uint64_t live_figs_next;   /* [w] the writer: its figures go to the page from then on */
    /* a read-only view of a compaction committed but not finished (compact_open.c): segment
     * cv_first + i is read from its .compact file while cv_compact[i] (i < cv_n); NULL when
     * there is none. Set at open (a reload swaps it with the index) */
    uint8_t *cv_compact;
    uint32_t cv_first, cv_n;
    bp_view *old_views;   /* [w] a reader: entity checkpoints of views it replaced */
    uint32_t n_old_views; /* [w] */
    bp_file ffile;        /* [w] a reader: the segment it follows (ffile_segno), or fd -1 */
    uint32_t ffile_segno;
    bp_buf fbuf;            /* [w] a reader: frames read while following */
    pthread_t follower;     /* a reader's follower thread, started by bp_wait_until */
    bool follower_running;  /* atomic; set under wmu */
    uint32_t follower_stop; /* atomic */
    bp_store_ident ident;
    bp_store_open_report report;
    struct bp_dkeys *dk; /* data keys (dkeys.c); never NULL once open */
    bool seal;           /* seal every application payload (DIR/dkeys exists) */

    /* publish notifications for watchers: a waiter registers in pwaiters (seq_cst) and
     * sleeps on pcond under pmu while published has not moved; publish() stores published
     * (seq_cst) and then broadcasts if pwaiters > 0 */
    pthread_mutex_t pmu;
    pthread_cond_t pcond;
    uint32_t pwaiters;       /* atomic */
    struct bp_fence *fences; /* [pmu] visibility fences open (submit.c) */
    struct bp_turn *turns;   /* [pmu] entities whose turn CAS writers hold (turns.c) */
    uint32_t n_turns;        /* [pmu]; also loaded without it (atomic) */
    uint32_t turns_cap;      /* [pmu] */
    uint64_t serial;         /* unique per open handle in the process (turns.c) */

    /* the layers built on the store (bp_store_module): their states, in the order given to
     * bp_store_open_with; a state is NULL until its module's on_open sets it */
    const bp_store_module *mods[BP_STORE_MODULES_MAX];
    void *mstate[BP_STORE_MODULES_MAX];
    uint32_t n_mods;
    /* hooks on the write path, NULL when unset: sign_fn signs an append's receipt outside
     * wmu (set at open); publish_fn runs under wmu each time the watermark moves, with the
     * seqs newly published (set and cleared under wmu) */
    void (*sign_fn)(void *ctx, bp_receipt *r);
    void *sign_ctx;
    void (*publish_fn)(void *ctx, bp_store *s, uint64_t from, uint64_t to); /* [w] */
    void *publish_ctx;                                                      /* [w] */

    /* compaction (compact.c): one at a time under cmu (taken before wmu). anchors is the
     * store's DIR/ANCHORS ([i] for readers; replaced under wmu + ilock). cmu also keeps the
     * segment files as they are for verify and snapshot, which read them by path (a
     * compaction replaces files under the same names). Readers hold segfiles (above): a
     * compaction drops the store's references to the ones it retired and never waits. */
    pthread_mutex_t cmu;
    uint32_t compacting; /* atomic: a compaction (under cmu) has put the tier back in memory, and
                            its plan reads the records there: bp_tier_extend waits */
    bp_anchors anchors;
    bool anchors_lost;  /* an accepted loss moved anchors.last_segno: ANCHORS is rewritten */
    bool loss_accepted; /* the open went past evidence of lost data (accept_loss): a writable
                           one records it (its open event, a new index.ckpt). A salvage's
                           loss_note alone is reported, not recorded */
    bp_strtab *graves;  /* [w] name tables of indexes a compaction replaced (freed at close) */
    uint32_t n_graves;

    /* entities in name order (entities.c, bp_entities_list), under emu (taken before ilock):
     * sorted[0..n_sorted) are the ids of the index's first n_sorted entities, by name, as of
     * the index of sorted_graves (a compaction's index renumbers them: sorted anew) */
    pthread_mutex_t emu;
    uint32_t *sorted;
    uint32_t n_sorted, sorted_graves;

    /* the segfile cache (segfile.c, see bp_segfile) */
    uint32_t sf_cached;    /* atomic: segs[i].rd not NULL */
    uint32_t sf_cached_fd; /* atomic: of which hold a descriptor */
    uint32_t sf_max;       /* set at open */
    uint32_t sf_fd_max;    /* set at open */
    uint32_t sf_trim;      /* atomic: over a bound, bp_segref_done evicts */
    uint32_t sf_hand;      /* [i exclusive] the eviction clock's hand (an index into segs) */
    int *close_later;      /* [w] writer descriptors of sealed segments a sync may still use */
    uint32_t n_close_later, close_later_cap; /* [w] */

    pthread_rwlock_t ilock;
    bp_index idx;           /* [i] */
    uint32_t entckpt_segno; /* set at open: the segment the entity checkpoint used names */
    bp_view cold_view;   /* that checkpoint's bytes, mapped: the index's cold directory (index.h) */
    uint32_t n_six;      /* [i] segs[0..n_six) are the six tier: sealed, their index files mapped,
                            their slots (below idx.list_base) in no entity, scope or kind list */
    bool tier_check;     /* [w] a segment was sealed (or the store opened): bp_tier_extend */
    uint32_t tier_gen;   /* [i] moves when a tier segment's index file is replaced (a piece by
                            its segment's file): walks' hints into it are stale */
    uint64_t hot_events; /* [w] the newest records bp_tier_extend leaves in memory */
    uint32_t untier;     /* atomic: a tier file could not answer: bp_six_repair puts the tier back
                            in memory (bp_index_untier) */
    bp_segment *segs;    /* [i] array; the active segment's size is [w] */
    uint32_t n_segs, segs_cap;
    uint64_t published; /* [i] publish watermark (highest visible global_seq); written with
                           an atomic store so that watchers may load it without ilock */

    pthread_mutex_t wmu;
    /* durability waiters sleep on the wait word sync_gen (bp_pf_word_wait), without wmu,
     * until it moves; a leader bumps it, with wmu held, after each fdatasync and on failure,
     * and wakes them when sync_sleepers says some sleep */
    uint32_t sync_gen;          /* atomic */
    uint32_t sync_sleepers;     /* atomic: durability waiters between their look at sync_gen
                                   and their return */
    bp_idgen idgen;             /* [w] */
    uint64_t last_hlc;          /* [w] */
    uint64_t written_seq;       /* [w] */
    uint64_t synced_seq;        /* [w] written with an atomic store; durability waiters load it
                                   atomically without wmu */
    uint64_t need_sync_upto;    /* [w] highest seq whose append waits for a sync */
    bool syncing;               /* [w] a leader is in fdatasync */
    int failed;                 /* [w] 0, or the status that fail-stopped the store */
    char failed_msg[300];       /* [w] the original error */
    uint32_t unsynced;          /* [w] events written since the last sync */
    uint64_t unsynced_since_us; /* [w] when the oldest unsynced event was written */
    bp_buf enc;                 /* [w] frame encoding scratch */
    bp_buf sealbuf;             /* [w] a sealed payload being encoded */
    bp_frame *frames;           /* [w] scratch: the fields of the frames of one commit */
    size_t frames_cap;          /* [w] */
    uint32_t *bheads;           /* [w] scratch: a batch's entity heads (write.c batch_heads) */
    size_t bheads_cap;          /* [w] a power of two, or 0 */
    uint32_t *bdeps;            /* [w] scratch: a batch's in-batch previous events (write.c) */
    size_t bdeps_cap;           /* [w] */
    bp_buf pending;             /* [w] frames of durable commits not yet written: they fill the
                                   active segment from pending_off up to its size, belong to
                                   unpublished events, and are written by the next group-commit
                                   leader (or before any other write to the file) */
    uint64_t pending_off;       /* [w] */
    uint32_t arriving;          /* atomic: appenders inside commit() that have not yet written;
                                   a group-commit leader waits for them (BP_GROUP_WAIT_US) */
    uint32_t head_waiting;      /* atomic, raised under wmu: head readers (bp_entity_head)
                                   waiting for an append of theirs to be published: they
                                   cannot append before that sync, so a leader does not
                                   wait for them; turn waiters (turns.c) alike */
    uint64_t writes_total;      /* [w] commits written (each append or batch counts 1) */
    uint64_t writes_at_sync;    /* [w] writes_total when the last fdatasync started */
    uint32_t group_prev;        /* [w] commits the last fdatasync covered */
    uint64_t gather_timeouts;   /* [w] gathers that ended at the deadline, the group short */
    uint64_t sync_from;         /* [w] the active segment's size when the last fdatasync
                                   started (sync_from_segno's): what a group commit adds */
    uint32_t sync_from_segno;   /* [w] */
    bool gathering;             /* [w] a leader sleeps on gcond gathering its group */
    bool gather_wake;           /* [w] its group is complete: wake it when wmu is released */
    pthread_cond_t gcond;       /* with wmu: an appender that completes the group wakes the
                                   gathering leader */
    uint8_t rnd[1024];          /* [w] random pool for ids */
    size_t rnd_pos;             /* [w] */

    /* background flusher for BP_DURABLE_EVERY(n, ms): started by the first
     * append that asks for an ms bound; syncs when the oldest unsynced event
     * is flush_ms old, so the bound holds when appends stop. */
    pthread_cond_t fcond; /* wakes the flusher (with wmu) */
    pthread_t flusher;
    bool flusher_running; /* [w] */
    bool flusher_stop;    /* [w] */
    uint32_t flush_ms;    /* [w] smallest ms bound asked for */

    struct bp_submitq *sq; /* bp_submit's queue and thread (submit.c); NULL until the first
                              submit, then set once under wmu */

    /* statistics [w] */
    uint64_t six_written, six_failed; /* [w] segment index files written / not written */
    /* [w] pieces (piece.c): the segment and frames end of the last one written (0: none for
     * the active segment), when it was written and what it cost; written / not written */
    uint32_t piece_segno;
    uint64_t piece_end, piece_at_us, piece_cost_us;
    uint64_t pieces_written, pieces_failed;
    uint64_t fsyncs;
    uint64_t appends;
    uint64_t lat[BP_LAT_BUCKETS];
    uint64_t lat_sum_us; /* sum of the latencies counted in lat (atomic, like lat) */
};

/* read.c: does slot pass every filter of f (store.h bp_rfilter)? [i] held shared, or [w]
 * (the writer sees its own index). A six tier slot is read through its index file (and its
 * frame when a time bound needs its hlc). */
bool bp_rfilter_match(const bp_rfilter *f, bp_store *s, uint64_t slot);

/* The schema version an append's options state (0 when none). */
static inline uint8_t bp_opts_schema(const bp_append_options *o) {
    return o ? o->schema_version : 0;
}

/* segment.c: the path of segment segno's file, DIR/segments/NNNNNN.fbat, followed by suffix
 * ("" or ".compact"). */
void bp_segment_path(const bp_store *s, uint32_t segno, const char *suffix, char *out, size_t cap);
/* segment.c: BP_ECORRUPT for DIR/segments that is not a directory (listing it gave ENOTDIR). */
bp_status bp_segdir_not_dir(const bp_store *s);
/* segment.c */
bp_status bp_segment_create(bp_store *s, uint32_t segno); /* [w], appends to segs */
/* The header of this store's segment segno (created now). */
void bp_segment_header(const bp_store *s, uint32_t segno, uint8_t out[BP_SEG_HEADER_SIZE]);
/* The meta of an index.ckpt of this store covering segment segno up to offset: its id, and
 * the newest HLC and event id it issued. */
void bp_ckpt_meta_of(const bp_store *s, uint32_t segno, uint64_t offset, bp_ckpt_meta *m);
bp_status bp_segment_seal(bp_store *s); /* [w] seals the active segment */
/* [i] exclusive: room in segs[] for one more segment (0 or -ENOMEM); then bp_segs_push
 * appends seg, and returns the previous segment's cached segfile (made for a segment that
 * grew: unref it once ilock is released), uncached. */
int bp_segs_reserve(bp_store *s);
bp_segfile *bp_segs_push(bp_store *s, const bp_segment *seg);
/* [w] Before a group commit's fdatasync: keep zeros written ahead of the active segment's
 * end, so that the fdatasync of appended frames writes data only, with no change of the
 * file's size or block map to record (measured 25% cheaper on ext4). Best effort: a write
 * that fails (a full disk, say) only stops it for this segment. */
void bp_segment_zero_ahead(bp_store *s);
/* [w] Cut the active segment's file back to its last frame: the zeros written ahead go. */
int bp_segment_trim(bp_store *s);
bp_status bp_store_checkpoint(bp_store *s); /* [w] writes index.ckpt */

/* [i] or [w]: the slots of segs[i] are [segs[i].first_slot, bp_seg_end_slot(s, i)). */
static inline uint64_t bp_seg_end_slot(const bp_store *s, uint32_t i) {
    return i + 1 < s->n_segs ? s->segs[i + 1].first_slot : s->idx.n;
}

/* sixfile.c: segment index files (DIR/segments/NNNNNN.fidx), caches of sealed segments'
 * indexes searched in place. A mapped one: x.p == p, x.n == len, and x passed bp_six_open;
 * its blocks are checked when first used (bp_six_need), under ilock shared or exclusive. */
struct bp_sixmap {
    bp_six x;
    const uint8_t *p;
    uint64_t len;
};
struct bp_six_pair;
void bp_six_path(const bp_store *s, uint32_t segno, char *out, size_t cap);
/* The pair (format/six.h) of sealed segment segno's file as it is: -ENOENT when it has no
 * trailer, -EILSEQ when its header does not name it and this store, else 0 or -errno. */
int bp_six_pair_read(const bp_store *s, uint32_t segno, struct bp_six_pair *pair);
bool bp_six_pair_eq(const struct bp_six_pair *a, const struct bp_six_pair *b);
/* Segment segno has an index file whose header is intact and names its file as it is. */
bool bp_six_current(const bp_store *s, uint32_t segno);
/* Write segment segno's index file from the slots [from, to) of x (no one changes x
 * meanwhile: wmu held, or the open). The segment is sealed. BP_EIO / BP_ENOMEM / BP_EINVAL
 * (a segment this format cannot index) with the reason; the caller counts it and goes on. */
bp_status bp_six_write(bp_store *s, const bp_index *x, uint64_t from, uint64_t to, uint32_t segno);
/* The same with the pair given, written as segdir/name (a piece: piece.c). */
bp_status bp_six_write_as(bp_store *s, const bp_index *x, uint64_t from, uint64_t to,
                          const struct bp_six_pair *pair, const char *name);
/* [w] The same for segment i of segs[] (its slots to the next segment's first one), counted
 * in six_written or six_failed. */
void bp_six_write_seg(bp_store *s, uint32_t i);
/* Writable open: write the index file of every sealed segment whose file is not current,
 * and remove index files of segments that no longer exist. */
void bp_six_open_pass(bp_store *s);
/* Open (recovery): map sealed segment seg's index file when it is current for the file as
 * recovery read it (size, footer offset and CRC) and lists n_recs records from first_seq
 * (n_recs 0: whatever it lists): true with seg->six set. Nothing is written. */
bool bp_six_attach(bp_store *s, bp_segment *seg, uint64_t size, uint64_t foff, uint32_t footer_crc,
                   uint32_t n_recs, uint64_t first_seq);
/* The same for the index file at path, whose pair must be want. */
bool bp_six_attach_file(bp_store *s, bp_segment *seg, const char *path,
                        const struct bp_six_pair *want, uint32_t n_recs, uint64_t first_seq);
/* The end slot of tier segment i's index file: six_end, or the next segment's first slot. */
static inline uint64_t bp_six_end_slot(const bp_store *s, uint32_t i) {
    return s->segs[i].six_end ? s->segs[i].six_end : bp_seg_end_slot(s, i);
}
/* entities.c. emu held, and [i] shared or [w]: fn(ctx, id, -1) for each entity of the index's
 * table, fn(ctx, -1, i) for each entry i of its cold directory the table does not list, in name
 * order (bytewise), from the first at or past from (past it when after) while fn returns
 * true. BP_OK or BP_ENOMEM. */
typedef bool (*bp_entity_fn)(void *ctx, int64_t id, int64_t cold);
bp_status bp_entities_walk(bp_store *s, const char *from, size_t flen, bool after, bp_entity_fn fn,
                           void *ctx);

/* tier.c. [i] shared or [w] (ctx: the store). Entity name's clock and head as its newest tier
 * event has them (the newest segment whose index file lists it, that event's frame): 1, -1
 * when no tier segment lists it, 0 when that cannot be told (a file or frame that cannot be
 * read). The cold directory's verify (index.h). */
int bp_tier_head(void *ctx, const char *name, size_t len, uint64_t *clock, bp_hash *head);

/* entckpt.c: the entity checkpoint (DIR/entities.ckpt). [w] At the seal of the active
 * segment (its footer ending with footer_crc): written for the state the index has. */
void bp_entckpt_write_seal(bp_store *s, uint32_t footer_crc);
/* entckpt.c: recovery, before any segment is loaded (the index holds the anchors only): when
 * the checkpoint fits segments first .. last (and names one below `below`, when not 0),
 * attach those up to the one it names by their index files (segs[0..n), the six tier) and
 * load the entities from it. Returns n (0: not used, nothing attached; *err set only when
 * out of memory). s->entckpt_segno is then the segment it names. */
uint32_t bp_entckpt_attach(bp_store *s, uint32_t first, uint32_t last, uint32_t below,
                           bp_status *err);
/* entckpt.c: a writable open whose six tier ends past the segment the checkpoint it used named
 * (s->entckpt_segno; 0: none): write one for the tier's end. */
void bp_entckpt_open_pass(bp_store *s);
/* Unmap seg's index file (the segment leaves the store). */
void bp_six_detach(bp_segment *seg);
/* [i] shared. The slot of event id, or -1: idtab first, then the index files of the
 * segments whose ids it leaves out. A file that cannot answer is passed over for a scan of
 * its segment's records and marked (six_bad); *repair is then set: after letting go of
 * ilock, call bp_six_repair. */
int64_t bp_store_find_id(bp_store *s, const bp_id *id, bool *repair);
/* [w] The slot of the event committed under the idempotency key, or -1 (*slot), like
 * bp_store_find_id: idem_keys, then the files of the segments it leaves out (each candidate
 * checked against its frame). A read error is returned. */
bp_status bp_store_find_idem(bp_store *s, const char *key, size_t len, int64_t *slot, bool *repair);
/* No lock held: place in idtab (and, on a writable handle, idem_keys, read from the frames)
 * the ids of the segments marked six_bad, and (writable) write their index files again.
 * Takes wmu (writable) and ilock. */
void bp_six_repair(bp_store *s);
/* [w] The same, wmu held (the append path). */
void bp_six_repair_locked(bp_store *s);
/* No lock held: put the six tier back in memory (bp_index_untier; compaction plans from the
 * whole lists). BP_OK or BP_ENOMEM. Takes wmu (writable) and ilock exclusive. */
bp_status bp_six_untier(bp_store *s);
/* [i] shared. Entity eid's events in the six tier (clocks base + 1 .. base + tier) with
 * clocks from `clock` on, in clock order: fn(ctx, slot, clock, kind) for each until it
 * returns false. 0, or -1 when a tier file cannot answer (then marked: call bp_six_repair
 * after letting go of ilock, which puts the tier back in memory, and try again). hint (NULL:
 * from the first segment) is where the last walk stopped, kept by a caller that walks on
 * (an iterator): valid only for the same entity, later clocks and an unchanged tier. */
typedef struct bp_tier_hint {
    uint32_t seg; /* where the walk starts: no tier segment before it holds the clock */
    int64_t ent;  /* the entity's entry in segs[seg]'s file, or -1: not looked up yet */
    uint32_t rec; /* the record (in segs[seg]'s file) of the event last handed to fn */
} bp_tier_hint;
#define BP_TIER_HINT_INIT                                                                          \
    { 0, -1, 0 }
int bp_tier_walk(bp_store *s, int64_t eid, uint64_t clock,
                 bool (*fn)(void *ctx, uint64_t slot, uint64_t clock, uint16_t kind), void *ctx,
                 bp_tier_hint *hint);
/* [i] shared. The slot of entity eid's event at clock, -1 when it has none there (compacted
 * away, or past its head), -2 as bp_tier_walk's -1. */
int64_t bp_store_clock_slot(bp_store *s, int64_t eid, uint64_t clock);
/* tier.c: [i] shared. The record of tier slot, which is record k of tier segment i's index
 * file (a walk's hint: bp_tier_hint.seg and .rec), into *r without its entity (UINT32_MAX),
 * and its scope as the file names it into scope; false when the file cannot say (then
 * bp_store_rec and bp_tier_names can). */
bool bp_tier_rec_at(bp_store *s, uint32_t i, uint32_t k, uint64_t slot, bp_irec *r,
                    char scope[BP_COORD_MAX + 1]);
/* tier.c: [i] shared. The first six tier segment whose slots do not all lie below slot (the
 * one holding it, or the next one when slot falls in holes between them); s->n_six if none. */
uint32_t bp_six_tier_seg(const bp_store *s, uint64_t slot);
/* tier.c: [i] shared (or [w]). The record of slot into *out: from memory at or above
 * idx.rbase; below it (the six tier) from its segment's index file: id, segno, offset,
 * frame_len and kind; entity and scope numbered the index's way (found by name) with
 * BP_REC_IDS, else UINT32_MAX; hlc and flags 0 (its frame has them: bp_tier_time). 1, 0 for
 * a hole (or slot >= idx.n), -1 with the error set. A file that cannot answer is marked
 * (bp_six_repair puts the tier back in memory) and the record comes from the segment's SIDX
 * footer meanwhile: -1 only when that fails too. */
#define BP_REC_IDS 1u
int bp_store_rec(bp_store *s, uint64_t slot, bp_irec *out, unsigned what);
/* tier.c: [i] shared. The entity and scope names (NUL-terminated) tier slot's index file
 * gives its event: false for a hole, or when the file cannot say. */
bool bp_tier_names(bp_store *s, uint64_t slot, char entity[BP_COORD_MAX + 1],
                   char scope[BP_COORD_MAX + 1]);
/* tier.c: [i] shared. The hlc and flags of record r (from bp_store_rec), read from its frame:
 * false when the frame cannot be read or is not r's event. */
bool bp_tier_time(bp_store *s, const bp_irec *r, uint64_t *hlc, uint16_t *flags);
/* tier.c: [i] shared. Can the tier segment holding slot have events with wall times in
 * [since_ms, until_ms] (0: no bound)? By its index file's hlc range; *all: every one of
 * them has. */
bool bp_tier_hlc_within(bp_store *s, uint64_t slot, uint64_t since_ms, uint64_t until_ms,
                        bool *all);
/* tier.c: no lock held. A reader found the event tier segment segno's index file named was
 * not there: mark the file (bp_six_repair puts the tier back in memory). */
void bp_tier_distrust(bp_store *s, uint32_t segno);
/* tier.c: [w] held (a reader: its refresh), ilock not. Grow the six tier over the sealed
 * segments after it, as far as each holds events, all published, and has a current index
 * file (mapped now when it is not yet): their records leave memory (bp_index_retier), as an
 * open would have left them, so that a long-running writer or follower keeps in memory only
 * the segments it has not sealed. Best effort (a missing file or no memory: they stay in
 * memory). True when it should be called again: a segment's events are not all published. */
bool bp_tier_extend(bp_store *s);
/* tier.c: at the end of an open: the window of newest records kept in memory
 * (BP_HOT_EVENTS), and a writer's first append looks for sealed segments to move out. */
void bp_tier_open(bp_store *s);
/* tier.c: [i] exclusive. Put the six tier back in memory: its records from the segments'
 * SIDX footers (bp_index_untier). The tier stays when memory is short or a footer cannot be
 * read. */
void bp_tier_untier_locked(bp_store *s);
/* [i] shared. The clock of the event at slot (not a hole); 0 as bp_tier_walk's -1. */
uint64_t bp_store_clock_of(bp_store *s, uint64_t slot);

/* sync.c: fail-stop: record the first error; later writes return the same status (BP_EIO)
 * with the original message. [w] */
bp_status bp_store_fail(bp_store *s, int status, int neg_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* sync.c: failed_msg without its leading "DIR: " (the callers name the directory first). */
const char *bp_failed_detail(const bp_store *s);
/* sync.c: the error of an append to a fail-stopped store. */
bp_status bp_failed_error(bp_store *s);
/* sync.c: [w] unsynced events start now (none were before): note the time the EVERY ms
 * bound counts from, and wake the flusher that keeps it. */
void bp_unsynced_start(bp_store *s);
/* sync.c: [w] publish everything up to seq (monotonic): the publish hook, then the waiters. */
void bp_publish(bp_store *s, uint64_t seq);
/* sync.c: [w] publish what may be: everything written, unless an append that waits for
 * durability is not yet synced. */
void bp_publish_ready(bp_store *s);
/* sync.c: [w] an appender that counted itself in s->arriving has written, or gives up; the
 * gathering group-commit leader is woken by bp_wmu_unlock when its group is complete. */
void bp_arrived(bp_store *s);
/* A head reader starts (begin) or ends (end) waiting for a publish: a group-commit leader
 * counts it as one of the group it gathers. No lock held. */
void bp_head_wait_begin(bp_store *s);
void bp_head_wait_end(bp_store *s);
/* live.c: DIR/LIVE. The writer sets its page up at open (bp_live_open, best effort: readers
 * of other processes then follow nothing) and marks every publish on it (bp_live_publish,
 * [w]). A reader's open clamps what it publishes to a live writer's mark (bp_live_clamp:
 * true when it did); bp_follow_start starts its follower thread; bp_live_close stops the
 * follower, marks the writer's page closed and unmaps it. */
void bp_live_open(bp_store *s);
void bp_live_publish(bp_store *s, uint64_t seq);
/* [w] The writer's figures to its page: now, or when the last were 10 ms ago. */
void bp_live_figures(bp_store *s, bool now);
/* A reader: the figures of the writer holding the store now (false: none, or an older one). */
bool bp_live_writer_figures(bp_store *s, bp_live_figs *f);
bool bp_live_clamp(bp_store *s, uint64_t *published);
/* A read-only open: segment segno (its newest) is a live writer's up to *end, which it never
 * cuts (UINT64_MAX: the writer is past it, it is sealed); false when no live writer says so. */
bool bp_live_tail_bound(bp_store *s, uint32_t segno, uint64_t *end);
/* A read-only handle: the files moved under its view since it was made (the writer that
 * holds the store compacted it, or another writer opened it: DIR/LIVE says so). No lock. */
bool bp_live_moved(bp_store *s);
/* A read-only open: map every sealed segment now and keep it (rd_keep), so that a file a
 * live writer's compaction replaces later is not the one read; BP_ECORRUPT when one was
 * replaced during the open already (its size is not the index's), BP_EIO. */
bp_status bp_live_pin(bp_store *s);
void bp_follow_start(bp_store *s);
void bp_live_close(bp_store *s);

/* sync.c: release wmu, then wake the gathering leader if an appender completed its group. */
void bp_wmu_unlock(bp_store *s);
/* sync.c: [w] held on entry, NOT held on return. Wait until every event <= target is synced,
 * leading a group commit when no other thread is syncing. */
bp_status bp_wait_durable_release(bp_store *s, uint64_t target);
/* sync.c: [w] make sure the flusher runs with a bound of at most ms. */
bp_status bp_flusher_want(bp_store *s, uint32_t ms);
/* write.c */
bp_status bp_sync_locked(bp_store *s); /* [w] held; waits for a full sync */
/* [w] NOT held. Commit n independent appends in order under one hold of the write lock,
 * then wait once for the durability the durable ones need (a group commit by one thread).
 * rcs[i] / msgs[i] / receipts[i]: each item's outcome (signed when the store signs). */
#define BP_TICKET_MSG 512
bp_status bp_commit_each(bp_store *s, const bp_batch_item *items, size_t n, bp_receipt *receipts,
                         bp_status *rcs, char (*msgs)[BP_TICKET_MSG]);
/* outbox.c: an append's arguments copied, so that it can be committed later. Invariant:
 * item's strings, payload and options point into the struct itself (do not move it). */
typedef struct bp_owned_item {
    bp_batch_item item;
    bp_append_options opts;
    bp_id corr, caus;
    char *copy; /* entity, scope, payload, idempotency key */
} bp_owned_item;
int bp_owned_item_init(bp_owned_item *oi, const bp_batch_item *it); /* 0 or -ENOMEM */
void bp_owned_item_free(bp_owned_item *oi);
/* write.c: [w] NOT held. Commit n events of an export as they are (ids, clocks, hlc,
 * hashes): each must be the store's next seq, its entity's next clock, chained to the
 * entity's head, with an unused idempotency key (else BP_ECONFLICT, *bad its index, nothing
 * written). sync: write them as one synced unit (a batch) before they become visible. The
 * caller has checked each event_hash against the fields. */
bp_status bp_commit_imported(bp_store *s, bp_frame *frames, size_t n, bool sync, size_t *bad);
/* submit.c: tickets queued now, and the queue's capacity (any thread). */
void bp_submit_depth(bp_store *s, uint32_t *queued, uint32_t *capacity);
/* submit.c: commit what is queued and stop the submit thread (close). */
void bp_submit_stop(bp_store *s);
/* submit.c: cancel every fence still open (close); they keep no pointer to s. */
void bp_fence_cancel_all(bp_store *s);
bp_status bp_flush_pending(bp_store *s); /* [w] write the queued frames (fail-stops on error) */
void bp_flusher_stop(bp_store *s);       /* [w] NOT held; joins the flusher if running */

/* dkeys.c: the data key cache (open/close). */
typedef struct bp_dkeys bp_dkeys;
bp_status bp_dkeys_init(bp_store *s);
void bp_dkeys_free(bp_store *s);
void bp_dkeys_lock(bp_store *s, bool lock); /* hold off key changes (snapshot copies them) */
/* Turn sealing on for good (DIR/dkeys made, synced): before a store takes in sealed events
 * (an import of a sealed store's export), so that it never holds sealed events without it. */
bp_status bp_dkeys_turn_on(bp_store *s);
/* The entity's data key into *out with *found = true; *found = false when it has none
 * (never sealed, or forgotten). create: make one first (durable before it returns). */
bp_status bp_dkey_get(bp_store *s, const char *entity, size_t elen, bool create, bp_dkey *out,
                      bool *found);
/* Seal len bytes of plain into out (len + BP_SEAL_OVERHEAD bytes); returns that length. */
size_t bp_seal(const bp_dkey *k, const uint8_t *plain, size_t len, uint8_t *out);
/* A read event whose flags say BP_EVENT_SEALED: its payload opened into plain, or NULL with
 * payload_forgotten when the entity's key is gone. BP_ECORRUPT if it fails authentication. */
bp_status bp_unseal_event(bp_store *s, bp_event *ev, bp_buf *plain);

/* read.c */
/* Read, check (length, CRC, event id) and decode the frame of irec r through ref (from
 * bp_segment_ref). out points into the segment's mapping (ref->mapped set: it is valid while
 * the reference is held), or into buf when the frame was read with pread. */
bp_status bp_read_frame(bp_store *s, const bp_irec *r, bp_segref *ref, bp_buf *buf, bp_frame *out);
/* slot.c: reading one event by slot (store.h bp_slot_read) in two steps, for readers that
 * look the slot up under their own hold of ilock (bp_get, the iterators, bp_entity_head).
 * bp_slot_take: [i] held shared. Copy the record of the event at slot into *r and take a
 * reference to its segment into *ref (an open that failed is left in ref->err, for
 * bp_slot_finish to report); false (nothing taken) when there is no such event: past the
 * index, a hole, above the watermark (unless how has BP_SLOT_UNPUBLISHED), or in no
 * segment. */
bool bp_slot_take(bp_store *s, uint64_t slot, unsigned how, bp_irec *r, bp_segref *ref);
/* (bp_slot_finish, the second step, is below.) bp_slot_read for a caller that holds ilock (shared
 * is enough): how is HASH and/or BODY (an event would keep a reference the caller could only drop
 * under the lock). */
bp_status bp_slot_read_locked(bp_store *s, uint64_t slot, unsigned how, bp_slot *out);
/* segfile.c: [i] held (shared is enough). Take a reference to segment segno's segfile into
 * *out, opening it on first use (an open that fails leaves out->err, which bp_read_frame
 * reports); false (nothing taken) if the store has no such segment. */
bool bp_segment_ref(bp_store *s, uint32_t segno, bp_segref *out);
/* segfile.c: [i] held (shared is enough). Ask the CPU for the len bytes at offset of segment
 * segno, when its cached reader maps them (a hint for readers that know the frames they read
 * next: nothing is opened, taken or checked). */
void bp_segment_prefetch(bp_store *s, uint32_t segno, uint32_t offset, uint32_t len);
/* segfile.c: [i] NOT held (it may evict under ilock exclusive). Drop the reference. */
void bp_segref_done(bp_store *s, bp_segref *ref);
/* segfile.c: like bp_segref_done, but when the frame read through ref points into the
 * mapping, the reference moves into *hold (an event's: dropped with the event) instead.
 * *hold's previous reference is dropped either way. [i] NOT held. */
void bp_segref_keep(bp_store *s, bp_segref *ref, bp_segfile **hold);
/* segfile.c: drop the reference without evicting ([i] may be held). */
void bp_segref_drop(bp_segref *ref);
/* segfile.c: at open: the cache's bounds from RLIMIT_NOFILE. */
void bp_segfile_limits(bp_store *s);
/* segfile.c: [i] exclusive. Take seg's cached segfile out of the cache; the caller unrefs
 * what it returns after unlocking. */
bp_segfile *bp_segment_uncache(bp_store *s, bp_segment *seg);
/* segfile.c: open the file of segment segno with suffix ("" or ".compact") as a sealed
 * segment's segfile (one reference: the caller's); 0 or -errno. */
int bp_segfile_open(bp_store *s, uint32_t segno, const char *suffix, bp_segfile **out);
/* [i] held exclusively (or a reader's [w] before any other thread sees segs). Segment i's
 * segfile made from f's open file (a second descriptor of it), kept (rd_keep), in place of
 * any it had: a read-only handle reads the file it indexed, never one a compaction renamed
 * in since (bp_live_pin, the follower). grows as segfile_open's. 0 or -errno. */
int bp_segfile_adopt(bp_store *s, uint32_t i, const bp_file *f, bool grows);
/* segfile.c: [i] exclusive. Put f (its reference moves to the store) in seg's cache slot,
 * which must be empty. */
void bp_segment_cache(bp_store *s, bp_segment *seg, bp_segfile *f);
/* segfile.c: [w] close the writer's descriptor of a segment just sealed, or keep it in
 * close_later while a group-commit leader may be syncing a copy of it; flush close_later
 * (the leader, once its sync returned; close). */
void bp_segment_close_writer(bp_store *s, bp_segment *seg);
void bp_close_later_flush(bp_store *s);
/* Fill ev from a decoded frame: strings copied into the buffers, the payload pointing
 * into the frame's bytes. */
void bp_fill_event(bp_event *ev, const bp_frame *fr, char *ebuf, char *sbuf, char *ibuf);
/* bp_fill_event into o, then (open) its sealed payload opened into o->plain. */
bp_status bp_own_event(bp_store *s, bp_owned_event *o, const bp_frame *fr, bool open);
/* bp_slot_finish's how, besides store.h's: ilock is held, so ref is dropped without evicting
 * (then not with EVENT, whose reference would outlive the lock). */
#define BP_SLOT_LOCKED 0x100u
/* The second step of reading by slot (slot.c). [i] NOT held (unless BP_SLOT_LOCKED). Read,
 * check and decode the frame of r through ref (from bp_slot_take or bp_segment_ref), give
 * what how asks (store.h bp_slot), then let go of ref: with EVENT it moves into
 * out->ev->hold when the payload points into the mapping. Inline so that bp_get and the
 * iterators, whose how is a constant, compile to no more than their own copy did. */
static inline bp_status bp_slot_finish(bp_store *s, const bp_irec *r, bp_segref *ref, unsigned how,
                                       bp_slot *out) {
    bp_buf tmp = {0};
    bp_buf *buf = how & BP_SLOT_EVENT ? &out->ev->frame : &tmp;
    bp_frame fr;
    bp_status rc = bp_read_frame(s, r, ref, buf, &fr); /* checks length, CRC, id */
    if (!rc && (how & BP_SLOT_HASH)) out->hash = fr.event_hash;
    if (!rc && (how & BP_SLOT_BODY)) {
        const uint8_t *p = ref->mapped ? ref->sf->p + r->offset : buf->data;
        out->body->len = 0;
        if (bp_buf_append(out->body, p + BP_FRAME_PREFIX, r->frame_len - BP_FRAME_PREFIX))
            rc = bp_err(BP_ENOMEM, "read: out of memory");
    }
    if (how & BP_SLOT_EVENT) {
        bp_segref_keep(s, ref, &out->ev->hold); /* the payload may point into the mapping */
        if (!rc) rc = bp_own_event(s, out->ev, &fr, !(how & BP_SLOT_SEALED));
    } else if (how & BP_SLOT_LOCKED) {
        bp_segref_drop(ref);
    } else {
        bp_segref_done(s, ref);
    }
    if (tmp.data) bp_buf_free(&tmp); /* a frame read with pread, without EVENT */
    return rc;
}
/* turns.c: fairness among CAS writers of one entity (see the comment there). One entry per
 * entity with live holders: key (bp_turn_key), holders, the last time one acted. */
typedef struct bp_turn {
    uint64_t key;
    uint32_t holders;
    uint64_t stamp_us;
} bp_turn;
void bp_turns_init(bp_store *s); /* at open: the handle's serial */
void bp_turns_free(bp_store *s);
uint64_t bp_turn_key(const char *entity, size_t len);
/* No lock held: wait while another thread holds the entity's turn (a holder goes on). */
void bp_turn_wait(bp_store *s, uint64_t key);
/* [w] or no lock: whether another thread holds the entity's turn (and this one does not). */
bool bp_turn_blocked(bp_store *s, uint64_t key);
/* [w] or no lock: this thread's CAS append to the entity conflicted: it holds the turn. */
void bp_turn_lost(bp_store *s, uint64_t key);
/* This thread appended to s: it gives up the turn it holds on s, if any. */
void bp_turn_done(bp_store *s);

/* compact_open.c: at open, before the segments are listed: finish a compaction whose
 * manifest (DIR/COMPACT) was written, or remove what an unfinished one left; then load
 * DIR/ANCHORS into s->anchors and the index. */
bp_status bp_compact_recover(bp_store *s);
/* compact_open.c: the compaction's test hook (bp__compact_step, bp_testing.h) at step n. */
void bp_compact_step(int n);
/* compact_open.c: complete a committed compaction on disk from its manifest; idempotent
 * (open repeats it after a crash): rename the new files in, remove the replaced ones, sync,
 * install ANCHORS, remove the manifest. */
bp_status bp_compact_finish(bp_store *s, const bp_cmanifest *m);
/* compact_open.c: write DIR/ANCHORS for a, durable before it returns (an accepted loss of
 * compacted segments, an import's anchors). */
/* compact_open.c: put s->anchors into the index (recovery starts with them; before any event
 * of their entities). BP_OK or BP_ENOMEM. */
bp_status bp_anchors_index(bp_store *s);
bp_status bp_anchors_write(bp_store *s, const bp_anchors *a);
/* compact_open.c: an import of a compacted store's export starts with its anchors: into an empty
 * store (no event, no anchors, one empty active segment), write DIR/ANCHORS with a (upto and
 * anchors; first_segno = last_segno = the active segment, which then takes the compacted
 * range's events) and install it. BP_ECONFLICT when the store is not empty. Takes wmu. */
bp_status bp_anchors_install(bp_store *s, const bp_anchors *a);
/* compact_open.c: an import within its compacted range needs another segment: DIR/ANCHORS says
 * segments up to last_segno are compacted (written before that segment is created). [w];
 * a failure fail-stops the store. */
bp_status bp_anchors_extend(bp_store *s, uint32_t last_segno);
/* open.c: run every module's on_forget for entity; the first error, after running all. */
bp_status bp_store_forget_hooks(bp_store *s, const char *entity);

#endif
