#include "core/core.h"

#include <errno.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

static int vset(int status, int neg_errno, const char *fmt, va_list ap) {
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    if (neg_errno && n >= 0 && (size_t)n < sizeof last_error)
        snprintf(last_error + n, sizeof last_error - (size_t)n, ": %s", strerror(-neg_errno));
    return status;
}

int bp_err(int status, const char *fmt, ...) {
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
    default:
        return "unknown status";
    }
}
