/* live_writer DIR [WORKER_ID]: an application that holds the store at DIR (created when missing)
 * and appends to it until SIGTERM or SIGINT, then closes it cleanly (exit 0). With WORKER_ID it
 * also runs a checkpointed cursor worker of that id over the live:* entities, which takes
 * 1 ms per event (so it lags behind the appends, as a slow consumer does). The tests run
 * batpak commands beside it (cli_test.sh). Appends alternate between three entities, one
 * event every 0.5 ms, every tenth a batch of 3, every fifth durable; "ready" goes to stdout
 * (flushed) after the first. Exit 1 when an open or an append fails (said on stderr). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <batpak/batpak.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static bp_status slow_handler(void *ctx, const bp_delivery *d) {
    (void)ctx;
    (void)d;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return BP_OK;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: live_writer DIR [WORKER_ID]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    if (bp_store_open(&s, argv[1], &o) != BP_OK) {
        fprintf(stderr, "live_writer: %s\n", bp_last_error());
        return 1;
    }
    bp_worker *w = NULL;
    if (argc == 3) {
        bp_region r = BP_REGION_INIT;
        r.entity_prefix = "live:";
        bp_worker_config cfg = BP_WORKER_CONFIG_INIT;
        cfg.checkpoint_id = argv[2];
        cfg.checkpoint_every = 16;
        if (bp_cursor_worker(s, &w, &r, slow_handler, NULL, &cfg) != BP_OK) {
            fprintf(stderr, "live_writer: worker: %s\n", bp_last_error());
            bp_store_close(s);
            return 1;
        }
    }
    static const char *const entities[] = {"live:1", "live:2", "live:3"};
    const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01}; /* {"n":1} */
    for (unsigned long i = 0; !stop; i++) {
        bp_status rc;
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        ao.durability = i % 5 == 0 ? BP_DURABLE : BP_NO_SYNC;
        if (i % 10 == 9) {
            bp_batch_item items[3];
            for (int k = 0; k < 3; k++)
                items[k] =
                    (bp_batch_item){entities[k], "live", 0x1001, payload, sizeof payload, NULL};
            rc = bp_append_batch(s, NULL, items, 3);
        } else {
            rc = bp_append_ex(s, NULL, entities[i % 3], "live", 0x1001, payload, sizeof payload,
                              &ao);
        }
        if (rc != BP_OK) {
            fprintf(stderr, "live_writer: append: %s\n", bp_last_error());
            bp_store_close(s);
            return 1;
        }
        if (i == 0) {
            printf("ready\n");
            fflush(stdout);
        }
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    if (w && bp_worker_stop(w) != BP_OK) {
        fprintf(stderr, "live_writer: worker: %s\n", bp_last_error());
        bp_store_close(s);
        return 1;
    }
    if (bp_store_close(s) != BP_OK) {
        fprintf(stderr, "live_writer: close: %s\n", bp_last_error());
        return 1;
    }
    return 0;
}
