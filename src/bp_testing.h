/*
 * bp_testing.h — internal hooks for tests only (linked through bp_internal).
 */
#ifndef BP_TESTING_H
#define BP_TESTING_H

#include "batpak/batpak.h"
#include "platform/platform.h"

/**
 * bp_store_open with the platform layer's fault hook f (src/platform/platform.h): the only way
 * a test injects faults into a store.
 */
bp_status bp__store_open_fault(bp_store **out, const char *dir, const bp_open_options *opts,
                               bp_fault *f);

/**
 * Abandon a store as if the process died: close descriptors and release the
 * lock without flushing, syncing or writing the index checkpoint; free the
 * handle. Combine with bp_fault_power_loss() to simulate a power cut.
 */
void bp__store_crash(bp_store *s);

/**
 * Write index.ckpt as a full checkpoint, listing every event from global_seq 1 (what
 * builds before the tail checkpoint wrote at close), so tests can check it is still read.
 * Sync first: it refuses while durable frames are queued.
 */
bp_status bp__store_checkpoint_full(bp_store *s);

/**
 * How many of the newest records a handle keeps in memory when sealed segments move to the
 * six tier (bp_tier_extend; BP_HOT_EVENTS by default): tests set 0 to move every sealed
 * segment out as soon as it can.
 */
void bp__store_hot_events(bp_store *s, uint64_t n);

/**
 * Called (when set) at the steps of a compaction, so that crash tests can kill the process
 * there: 1 planned, 2 new files synced, 3 index.ckpt removed, 10 committed (manifest
 * written, index swapped), 100 + i new file i renamed in, 20 replaced files removed, 21
 * ANCHORS written. Also called while open finishes an interrupted compaction.
 */
extern void (*bp__compact_step)(int step);

/**
 * Called by a read-only handle's bp_store_refresh between its look at the writer's mark and
 * following the files to it (NULL: nothing), with the handle: a test changes the files there,
 * as a writer in another process may at that moment.
 */
extern void (*bp__refresh_step)(bp_store *s);

/**
 * The largest offset a frame may end at in a segment: BP_SEG_END_MAX unless a test lowers
 * it to reach the limit with small payloads. Appends and batches that would end past it
 * rotate to a new segment or are refused; recovery refuses a frame that ends past it.
 */
extern uint64_t bp__seg_end_max;

/**
 * The bound on segment files a store keeps mapped (0: the default, 1024), read when a store
 * is opened, so that tests reach eviction with few segments.
 */
extern uint32_t bp__segfile_max;

/**
 * How long a CAS writer's turn on an entity lasts after its holder last acted on it (read
 * the head, tried an append) before it lapses, in microseconds (default 50,000: see
 * src/store/turns.c). Tests that count retries under a slow scheduler raise it.
 */
extern uint64_t bp__turn_expire_us;

/**
 * The longest a group-commit leader waits for the appenders it expects before its fdatasync,
 * in microseconds (default BP_GROUP_WAIT_US, 200): tests raise it so that a leader that waits
 * for a thread that will not append shows as a gather that timed out.
 */
extern uint64_t bp__group_wait_us;

/**
 * The frames a writer lets pass between two index pieces of its active segment (default
 * BP_PIECE_BYTES, 8 MiB; read when a piece is due): tests lower it so that small stores have
 * pieces, which readers of other processes open with.
 */
extern uint64_t bp__piece_bytes;

/**
 * The six tier of s: how many segments it holds, and (0 when none) the slot where its newest
 * segment's piece ends (a read-only handle that opened with one, until the segment's index
 * file replaces it).
 */
void bp__store_tier(bp_store *s, uint32_t *n_six, uint64_t *piece_end);

/**
 * The group commit's state, under the store's write lock: group_prev (when not 0) becomes the
 * number of appends the next leader waits for; *gathering (when not NULL) says whether a leader
 * is gathering now; *timeouts (when not NULL) counts the gathers that ended at the deadline.
 */
void bp__store_group(bp_store *s, uint32_t group_prev, bool *gathering, uint64_t *timeouts);

#endif
