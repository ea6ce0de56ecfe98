/* Replication without libnats: every call says it is not compiled in (BP_ENOTSUP). */
#include "core/core.h"

static bp_status not_built(const char *what) {
    return bp_err(BP_ENOTSUP,
                  "%s: this libbatpak was built without NATS JetStream replication (install "
                  "libnats-dev, scripts/install-deps.sh does, and rebuild)",
                  what);
}

bool bp_replication_available(void) {
    return false;
}

bp_status bp_relay_start(bp_store *s, bp_relay **out, const bp_relay_config *cfg) {
    (void)s;
    (void)cfg;
    if (out) *out = NULL;
    return not_built("bp_relay_start");
}

bp_status bp_relay_stats_get(bp_relay *r, bp_relay_stats *out) {
    (void)r;
    if (out && BP_SIZE_OK(out, bp_relay_stats)) BP_OUT_RESET(out, bp_relay_stats);
    return not_built("bp_relay_stats_get");
}

bp_status bp_relay_wait(bp_relay *r, uint64_t seq, uint32_t timeout_ms) {
    (void)r;
    (void)seq;
    (void)timeout_ms;
    return not_built("bp_relay_wait");
}

bp_status bp_relay_stop(bp_relay *r) {
    (void)r;
    return BP_OK;
}

bp_status bp_follow(bp_follow_report *out, const char *replica_dir, const bp_follow_config *cfg) {
    (void)replica_dir;
    (void)cfg;
    if (out && BP_SIZE_OK(out, bp_follow_report)) BP_OUT_RESET(out, bp_follow_report);
    return not_built("bp_follow");
}
