/*
 * bp_testing.h — internal hooks for tests only (linked through bp_internal).
 */
#ifndef BP_TESTING_H
#define BP_TESTING_H

#include "batpak/batpak.h"
#include "platform/platform.h"

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

#endif
