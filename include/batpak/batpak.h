/** @file
 * batpak.h — umbrella header for libbatpak, an embedded, sync-first,
 * hash-chained event-sourcing store.
 *
 *  - common.h  status codes, errors, kinds, ids, durability modes
 *  - store.h   open/close, append (single, with options, batch), stats, verify
 *  - read.h    get by id, stream, scope, kind and region queries
 *  - guard.h   gates, gate sets, evaluate -> commit, persisted denials
 *  - sign.h    signed receipts, key files, key registry, receipt JSON
 *  - typed.h   typed payloads (X-macro structs), registry, upcasters, JSON lane
 *  - project.h projections, their cache and snapshots, watchers, replay lanes
 *  - deliver.h cursors (pull, lossless) and lossy subscriptions
 *  - replicate.h relay committed events to NATS JetStream, follow them into a replica
 */
#ifndef BATPAK_H
#define BATPAK_H

#include "common.h"
#include "store.h"
#include "read.h"
#include "guard.h"
#include "sign.h"
#include "typed.h"
#include "project.h"
#include "deliver.h"
#include "replicate.h"

#endif
