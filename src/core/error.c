/* The calling thread's error message, behind internal names only (bp_err*): the public
 * functions over it are in status.c. The format layer needs nothing else of the core, so the
 * CLI links this file with it (bp_fmt) without duplicating a public symbol of the library. */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

/* strerror is not thread-safe; strerror_r is (the GNU one returns the text, which may be a
 * static string rather than buf). */
const char *bp_errno_text(int errnum, char buf[BP_ERRNO_TEXT_MAX]) {
    return strerror_r(errnum, buf, BP_ERRNO_TEXT_MAX);
}

/* Formats into a scratch buffer first: callers often add context to the previous error,
 * bp_err(rc, "%s: ...: %s", path, bp_last_error()), and an argument may point into
 * last_error itself (formatting a buffer into itself garbles the message). */
int bp_err_v(int status, int neg_errno, const char *fmt, va_list ap) {
    char msg[sizeof last_error];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    char eb[BP_ERRNO_TEXT_MAX];
    if (neg_errno && n >= 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": %s", bp_errno_text(-neg_errno, eb));
    memcpy(last_error, msg, sizeof msg);
    return status;
}

int bp_err(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bp_err_v(status, 0, fmt, ap);
    va_end(ap);
    return status;
}

int bp_err_sys(int status, int neg_errno, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bp_err_v(status, neg_errno, fmt, ap);
    va_end(ap);
    return status;
}

void bp_err_clear(void) {
    last_error[0] = '\0';
}

const char *bp_err_message(void) {
    return last_error;
}

int bp_err_size(const char *fn, const char *type, const char *init, uint32_t got, size_t want) {
    return bp_err(BP_EINVAL,
                  "%s: %s.struct_size is %u, not %zu: set it with %s (this library is %s)", fn,
                  type, got, want, init, BP_VERSION_STRING);
}
