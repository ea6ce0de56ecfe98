/* The public face of errors (batpak/common.h): bp_last_error, bp_set_error, bp_version and
 * bp_strerror. The thread-local message itself is error.c's, which holds no public symbol,
 * so that a program may link the format layer with error.c (the CLI's bp_fmt) next to
 * libbatpak.so without defining a second bp_last_error. */
#include "core/core.h"

const char *bp_last_error(void) {
    return bp_err_message();
}

bp_status bp_set_error(bp_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bp_err_v(status, 0, fmt, ap);
    va_end(ap);
    return status;
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
