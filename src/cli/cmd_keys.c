/* batpak keygen, batpak verify-receipt: signed receipts from the command line. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_keygen(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"out", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r;
    const char *prefix = "./batpak-signing";
    while ((r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "out"))
            prefix = arg.value;
        else
            return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
    }
    if (r < 0) return CLI_EUSAGE;
    if (!*prefix) return cli_fail(c, CLI_EUSAGE, "--out: empty prefix");
    size_t n = strlen(prefix) + 5;
    char *sk = malloc(n), *pk = malloc(n);
    if (!sk || !pk) cli_oom();
    snprintf(sk, n, "%s.key", prefix);
    snprintf(pk, n, "%s.pub", prefix);
    bp_signing_key k;
    int code = CLI_OK;
    bp_status rc = bp_keygen(&k);
    if (!rc && access(pk, F_OK) == 0) /* check both before writing either */
        rc = BP_EEXIST, code = cli_fail(c, CLI_EUSAGE, "%s: already exists; not overwritten", pk);
    if (!rc) rc = bp_signing_key_save(&k, sk, pk);
    if (rc && code == CLI_OK) code = cli_fail_status(c, rc);
    if (!rc) {
        uint8_t id[32];
        bp_key_id(id, k.public_key);
        json_t *o = json_object();
        if (!o) cli_oom();
        cli_json_set(o, "secret_key", json_string(sk));
        cli_json_set(o, "public_key", json_string(pk));
        cli_json_set(o, "key_id", cli_json_hex(id, 32));
        cli_print_json(o);
    }
    bp_signing_key_wipe(&k);
    free(sk);
    free(pk);
    return code;
}

bool cli_receipt_check(json_t *o, const char *text, size_t len, bp_store *s, const bp_keyring *kr,
                       bp_status *rc) {
    bp_receipt_doc *doc;
    if ((*rc = bp_receipt_from_json(&doc, text, len))) return false;
    const bp_receipt *ar = bp_receipt_doc_append(doc);
    const bp_denial_receipt *dr = bp_receipt_doc_denial(doc);
    if (ar)
        *rc = s ? bp_store_verify_receipt(s, ar) : bp_verify_receipt(kr, ar);
    else
        *rc = s ? bp_store_verify_denial_receipt(s, dr) : bp_verify_denial_receipt(kr, dr);
    const bp_receipt *ev = ar ? ar : dr->event;
    cli_json_set(o, "valid", json_boolean(*rc == BP_OK));
    cli_json_set(o, "type", json_string(ar ? "append_receipt" : "denial_receipt"));
    cli_json_set(o, "key_id", cli_json_hex(ar ? ar->key_id : dr->key_id, 32));
    cli_json_set(o, "event_id", cli_json_id(&ev->event_id));
    cli_json_set(o, "entity", cli_json_text(ev->entity, strlen(ev->entity)));
    cli_json_set(o, "global_seq", cli_json_u64(ev->global_seq));
    bp_receipt_doc_free(doc);
    return true;
}

/* One receipt line: verify, print the result. Returns an exit code (errors printed). */
static int verify_line(cli_ctx *c, const char *where, const char *line, size_t len, bp_keyring *kr,
                       bp_store *s) {
    json_t *o = json_object();
    if (!o) cli_oom();
    bp_status rc;
    int code = CLI_OK;
    if (!cli_receipt_check(o, line, len, s, kr, &rc))
        code = cli_fail(c, CLI_EUSAGE, "%s%s", where, bp_last_error());
    else if (rc) /* an unknown key or a bad signature is a failed verification, not a missing
                  * thing */
        code = cli_fail(c, rc == BP_EINVAL ? CLI_EUSAGE : CLI_ECORRUPT, "%s%s", where,
                        bp_last_error());
    if (code == CLI_OK)
        cli_print_json(o);
    else
        json_decref(o);
    return code;
}

int cmd_verify_receipt(cli_ctx *c, int argc, char **argv) {
    static const cli_option opts[] = {{"pubkey", true}, {NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r;
    const char *file = NULL;
    bp_keyring *kr;
    if (bp_keyring_new(&kr)) cli_oom();
    int code = CLI_OK;
    size_t nkeys = 0;
    while (code == CLI_OK && (r = cli_next_arg(&a, opts, &arg)) > 0) {
        if (cli_arg_is(&arg, "pubkey")) {
            bp_status rc = bp_keyring_add_file(kr, arg.value);
            if (rc) code = cli_fail_status(c, rc == BP_ENOTFOUND ? BP_EINVAL : rc);
            nkeys++;
        } else if (!file) {
            file = arg.value;
        } else {
            code = cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
        }
    }
    if (code == CLI_OK && r < 0) code = CLI_EUSAGE;
    if (code == CLI_OK && !file)
        code = cli_fail(c, CLI_EUSAGE, "needs FILE (or - for stdin) [--pubkey KEYFILE]");
    char *text = NULL;
    size_t len = 0;
    if (code == CLI_OK) code = cli_read_input(c, file, 64u << 20, &text, &len);
    bp_store *s = NULL;
    if (code == CLI_OK && nkeys == 0) code = cli_open_read(c, &s); /* the store's registry */
    size_t lines = 0, receipts = 0;
    int worst = CLI_OK;
    for (char *p = text; code == CLI_OK && p && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        lines++;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank) {
            char where[48] = "";
            snprintf(where, sizeof where, "line %zu: ", lines);
            receipts++;
            int lc = verify_line(c, where, p, n, kr, s);
            if (lc == CLI_EUSAGE)
                code = lc; /* malformed input stops */
            else if (lc != CLI_OK)
                worst = lc;
        }
        p = nl ? nl + 1 : NULL;
    }
    if (code == CLI_OK && receipts == 0) code = cli_fail(c, CLI_EUSAGE, "%s: no receipt", file);
    if (s) code = cli_close(c, s, code);
    free(text);
    bp_keyring_free(kr);
    return code == CLI_OK ? worst : code;
}
