/* Shared pieces of the relay and the follower (replicate.h): the NATS connection, names,
 * and the message headers of doc/FORMAT.md "Replication". Only src/replicate/ includes
 * libnats. */
#ifndef BP_NATS_UTIL_H
#define BP_NATS_UTIL_H

#include "deliver/deliver_impl.h"

#include <nats/nats.h>

/* The longest stream name and subject prefix accepted (a stream name fits the default
 * checkpoint id "relay.NAME" in the 63 bytes of a cursor checkpoint id). */
#define BP_STREAM_NAME_MAX 57
#define BP_SUBJECT_PREFIX_MAX 200

/* Header names of a relayed message (FORMAT.md "Replication"). */
#define BP_HDR_MSG_ID "Nats-Msg-Id"
#define BP_HDR_STORE "Batpak-Store"
#define BP_HDR_EVENT_ID "Batpak-Event-Id"
#define BP_HDR_ENTITY "Batpak-Entity"
#define BP_HDR_SCOPE "Batpak-Scope"
#define BP_HDR_KIND "Batpak-Kind"
#define BP_HDR_SEQ "Batpak-Seq"
#define BP_HDR_CLOCK "Batpak-Clock"
#define BP_HDR_HASH "Batpak-Hash"
#define BP_HDR_ANCHORS "Batpak-Anchors" /* an anchors message: the compacted range's upto */

/* BP_EINVAL naming field unless name is 1..BP_STREAM_NAME_MAX of [A-Za-z0-9_-]. */
bp_status bp_nats_check_stream(const char *field, const char *name);

/* BP_EINVAL unless prefix is a NATS subject of tokens of [A-Za-z0-9_-] joined by '.'. */
bp_status bp_nats_check_prefix(const char *prefix);

/* Connect to url (comma-separated servers) for good: the connection retries in the
 * background when no server answers yet and reconnects forever after a loss, waiting
 * reconnect_ms between tries. Then a JetStream context. BP_EINVAL (bad URL), BP_EIO. */
bp_status bp_nats_connect(const char *url, uint32_t reconnect_ms, natsConnection **nc, jsCtx **js);

/* Close and free what bp_nats_connect made (either may be NULL). */
void bp_nats_close(natsConnection *nc, jsCtx *js);

/* Set the calling thread's error: status, "<what>: <libnats text>" (with the JetStream error
 * code when there is one). */
bp_status bp_nats_err(bp_status status, natsStatus ns, jsErrCode jerr, const char *what);

/* Percent-encode text (bytes below 0x21, above 0x7E, and '%') into out (cap bytes, with
 * the NUL): header values stay printable ASCII. False when it does not fit. */
bool bp_nats_hdr_encode(const char *text, size_t len, char *out, size_t cap);

#endif
