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
static int vset(int status, int neg_errno, const char *fmt, va_list ap) {
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
    vset(status, 0, fmt, ap);
    va_end(ap);
    return status;
}

bp_status bp_set_error(bp_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(status, 0, fmt, ap);
    va_end(ap);
    return status;
}

int bp_err_sys(int status, int neg_errno, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(status, neg_errno, fmt, ap);
    va_end(ap);
    return status;
}

void bp_err_clear(void) {
    last_error[0] = '\0';
}

const char *bp_last_error(void) {
    return last_error;
}

const char *bp_version(void) {
    return BP_VERSION_STRING;
}

const char *bp_strerror(int status) {
    switch (status) {
    case BP_OK:
        return "ok";
    case BP_DONE:
        return "done";
    case BP_UNCHANGED:
        return "unchanged";
    case BP_EINVAL:
        return "invalid argument";
    case BP_ENOTFOUND:
        return "not found";
    case BP_ECONFLICT:
        return "conflict";
    case BP_ECORRUPT:
        return "corruption";
    case BP_EIO:
        return "I/O error";
    case BP_ELOCKED:
        return "store locked";
    case BP_EVERSION:
        return "unsupported format version";
    case BP_ENOMEM:
        return "out of memory";
    case BP_EBUSY:
        return "busy";
    case BP_ETOOBIG:
        return "too big";
    case BP_EREADONLY:
        return "read-only store";
    case BP_EDENIED:
        return "denied";
    case BP_EEXIST:
        return "already exists";
    case BP_ESIGNATURE:
        return "signature does not verify";
    case BP_ETIMEDOUT:
        return "timed out";
    case BP_ECANCELED:
        return "cancelled";
    case BP_ENOTSUP:
        return "not supported by this build";
    default:
        return "unknown status";
    }
}

int bp_err_size(const char *fn, const char *type, const char *init, uint32_t got, size_t want) {
    return bp_err(BP_EINVAL,
                  "%s: %s.struct_size is %u, not %zu: set it with %s (this library is %s)", fn,
                  type, got, want, init, BP_VERSION_STRING);
}
