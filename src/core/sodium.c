/* libsodium's one-time initialisation, shared by the data keys (store) and signing. */
#include "core/core.h"

#include <pthread.h>
#include <sodium.h>

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc;

static void sodium_start(void) {
    sodium_rc = sodium_init();
}

bp_status bp_sodium_ready(void) {
    pthread_once(&sodium_once, sodium_start);
    if (sodium_rc < 0) return bp_err(BP_EIO, "libsodium failed to initialise");
    return BP_OK;
}
