/* The NATS connection, names and header encoding shared by the relay and the follower. */
#include "replicate/nats_util.h"

#include <stdio.h>

bool bp_replication_available(void) {
    return true;
}

static bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bp_status bp_nats_check_stream(const char *field, const char *name) {
    if (!name || !*name) return bp_err(BP_EINVAL, "%s: missing (a JetStream stream name)", field);
    size_t n = strlen(name);
    if (n > BP_STREAM_NAME_MAX)
        return bp_err(BP_EINVAL, "%s: '%.40s...' is longer than %d bytes", field, name,
                      BP_STREAM_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (!token_char(name[i]))
            return bp_err(BP_EINVAL,
                          "%s: '%s' has the character 0x%02x at %zu; a stream name is letters, "
                          "digits, '_' and '-'",
                          field, name, (unsigned)(unsigned char)name[i], i);
    return BP_OK;
}

bp_status bp_nats_check_prefix(const char *prefix) {
    size_t n = strlen(prefix);
    if (!n || n > BP_SUBJECT_PREFIX_MAX)
        return bp_err(BP_EINVAL, "subject_prefix: must be 1..%d bytes", BP_SUBJECT_PREFIX_MAX);
    bool token_start = true;
    for (size_t i = 0; i < n; i++) {
        if (prefix[i] == '.' && !token_start) {
            token_start = true;
            continue;
        }
        if (!token_char(prefix[i]))
            return bp_err(BP_EINVAL,
                          "subject_prefix: '%s' is not tokens of letters, digits, '_' and '-' "
                          "joined by '.' (at %zu)",
                          prefix, i);
        token_start = false;
    }
    if (token_start) return bp_err(BP_EINVAL, "subject_prefix: '%s' ends with '.'", prefix);
    return BP_OK;
}

bp_status bp_nats_err(bp_status status, natsStatus ns, jsErrCode jerr, const char *what) {
    const char *last = nats_GetLastError(NULL);
    if (jerr)
        return bp_err(status, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(ns),
                      (int)jerr, last && *last ? ": " : "", last ? last : "");
    return bp_err(status, "%s: %s%s%s", what, natsStatus_GetText(ns), last && *last ? ": " : "",
                  last ? last : "");
}

/* Given to natsOptions_SetRetryOnFailedConnect so that a connect with no server up returns
 * at once (NATS_NOT_YET_CONNECTED) and goes on in the background; without a callback
 * libnats would retry inside natsConnection_Connect, forever with MaxReconnect -1. */
static void on_connected(natsConnection *nc, void *closure) {
    (void)nc;
    (void)closure;
}

bp_status bp_nats_connect(const char *url, uint32_t reconnect_ms, natsConnection **nc, jsCtx **js) {
    *nc = NULL;
    *js = NULL;
    if (!url || !*url) return bp_err(BP_EINVAL, "url: missing (nats://HOST:PORT)");
    natsOptions *o = NULL;
    natsStatus ns = natsOptions_Create(&o);
    if (ns == NATS_OK) ns = natsOptions_SetURL(o, url);
    if (ns != NATS_OK) {
        natsOptions_Destroy(o);
        return bp_nats_err(BP_EINVAL, ns, 0, url);
    }
    ns = natsOptions_SetMaxReconnect(o, -1); /* forever: the caller stops us, not the server */
    if (ns == NATS_OK) ns = natsOptions_SetReconnectWait(o, reconnect_ms);
    if (ns == NATS_OK) ns = natsOptions_SetTimeout(o, 2000);
    if (ns == NATS_OK) ns = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, NULL);
    if (ns == NATS_OK) ns = natsOptions_SetNoRandomize(o, true);
    if (ns == NATS_OK) {
        ns = natsConnection_Connect(nc, o);
        if (ns == NATS_NOT_YET_CONNECTED) ns = NATS_OK; /* it goes on trying in the background */
    }
    natsOptions_Destroy(o);
    if (ns != NATS_OK) {
        bp_status rc = bp_nats_err(BP_EIO, ns, 0, url);
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return rc;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    ns = natsConnection_JetStream(js, *nc, &jo);
    if (ns != NATS_OK) {
        bp_status rc = bp_nats_err(BP_EIO, ns, 0, "JetStream");
        bp_nats_close(*nc, NULL);
        *nc = NULL;
        return rc;
    }
    return BP_OK;
}

void bp_nats_close(natsConnection *nc, jsCtx *js) {
    if (js) jsCtx_Destroy(js);
    if (nc) {
        natsConnection_Close(nc);
        natsConnection_Destroy(nc);
    }
}

bool bp_nats_hdr_encode(const char *text, size_t len, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x21 || c > 0x7E || c == '%') {
            if (o + 3 >= cap) return false;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap) return false;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return true;
}
