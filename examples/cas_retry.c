/* cas_retry: optimistic concurrency. Read the entity's head clock, append with
 * that expectation, and retry when another writer got there first. An
 * idempotency key makes the retry of a request that did commit harmless. */
#include <batpak/batpak.h>
#include <stdio.h>

static int deposit(bp_store *s, const char *account, const char *request_id) {
    static const unsigned char payload[] = {0x81, 0xa3, 'a', 'd', 'd', 0x0a}; /* {"add":10} */
    for (int attempt = 1; attempt <= 5; attempt++) {
        uint64_t clock;
        if (bp_entity_head(s, account, &clock, NULL) != BP_OK) return -1;
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.has_expected_clock = true;
        o.expected_clock = clock;
        o.idempotency_key = request_id;
        bp_receipt r;
        bp_status rc =
            bp_append_ex(s, &r, account, "bank", BP_KIND(1, 2), payload, sizeof payload, &o);
        if (rc == BP_OK) {
            printf("%s: clock %llu%s\n", request_id, (unsigned long long)r.clock,
                   r.replayed ? " (replayed: already committed)" : "");
            return 0;
        }
        if (rc != BP_ECONFLICT) break;
        printf("%s: conflict on attempt %d, retrying\n", request_id, attempt);
    }
    fprintf(stderr, "deposit %s: %s\n", request_id, bp_last_error());
    return -1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./cas-data";
    bp_store *s;
    if (bp_store_open(&s, dir, NULL) != BP_OK) {
        fprintf(stderr, "open: %s\n", bp_last_error());
        return 1;
    }
    int rc = deposit(s, "account:7", "req-1");
    rc |= deposit(s, "account:7", "req-1"); /* the same request again: replayed, nothing written */
    rc |= deposit(s, "account:7", "req-2");
    return bp_store_close(s) == BP_OK && rc == 0 ? 0 : 1;
}
