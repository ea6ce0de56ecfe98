/* quickstart: open a store, append an event durably, read the entity back. */
#include <batpak/batpak.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./quickstart-data";
    bp_store *s;
    if (bp_store_open(&s, dir, NULL) != BP_OK) {
        fprintf(stderr, "open: %s\n", bp_last_error());
        return 1;
    }
    static const unsigned char payload[] = {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0x64};
    bp_receipt r = BP_RECEIPT_INIT;
    if (bp_append(s, &r, "account:42", "bank", BP_KIND(1, 1), payload, sizeof payload) != BP_OK) {
        fprintf(stderr, "append: %s\n", bp_last_error());
        bp_store_close(s);
        return 1;
    }
    printf("appended seq %llu, clock %llu, durable %s\n", (unsigned long long)r.global_seq,
           (unsigned long long)r.clock, r.durability == BP_DUR_SYNC ? "yes" : "no");
    bp_iter *it;
    const bp_event *ev;
    bp_status rc = bp_stream(s, &it, "account:42", BP_READ_FULL);
    while (rc == BP_OK && (rc = bp_iter_next(it, &ev)) == BP_OK)
        printf("  clock %llu kind 0x%04x %zu payload bytes\n", (unsigned long long)ev->clock,
               ev->kind, ev->payload_len);
    bp_iter_free(it);
    if (rc != BP_DONE) fprintf(stderr, "stream: %s\n", bp_last_error());
    return bp_store_close(s) == BP_OK && rc == BP_DONE ? 0 : 1;
}
