/* Coordinate and kind validation (doc/GUIDE.md, include/batpak/common.h). */
#include "core/core.h"

bool bp_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { /* ASCII: skip 8 bytes at a time while no high bit is set */
            i++;
            uint64_t w;
            while (i + 8 <= n && (memcpy(&w, s + i, 8), (w & 0x8080808080808080u) == 0))
                i += 8;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

bp_status bp_coord_validate(const char *field, const char *s) {
    if (!field) field = "coordinate";
    if (!s) return bp_err(BP_EINVAL, "%s: is NULL", field);
    size_t n = strnlen(s, BP_COORD_MAX + 1);
    if (n == 0)
        return bp_err(BP_EINVAL, "%s: is empty (1..%d bytes required)", field, BP_COORD_MAX);
    if (n > BP_COORD_MAX) return bp_err(BP_EINVAL, "%s: longer than %d bytes", field, BP_COORD_MAX);
    if (!bp_utf8_valid((const unsigned char *)s, n))
        return bp_err(BP_EINVAL, "%s '%s': not valid UTF-8", field, s);
    return BP_OK;
}

bp_status bp_coord_validate_sys(const char *entity, const char *scope, bool allow_reserved) {
    bp_status rc = bp_coord_validate("entity", entity);
    if (rc) return rc;
    rc = bp_coord_validate("scope", scope);
    if (rc) return rc;
    if (!allow_reserved && strncmp(entity, BP_RESERVED_PREFIX, strlen(BP_RESERVED_PREFIX)) == 0)
        return bp_err(BP_EINVAL, "entity '%s': the prefix '%s' is reserved for the library", entity,
                      BP_RESERVED_PREFIX);
    return BP_OK;
}

bool bp_kind_is_application(uint16_t kind) {
    unsigned cat = BP_KIND_CATEGORY(kind);
    return cat != BP_CATEGORY_SYSTEM && cat != BP_CATEGORY_EFFECT;
}

bp_status bp_validate_app_kind(uint16_t kind) {
    if (!bp_kind_is_application(kind))
        return bp_err(BP_EINVAL,
                      "kind 0x%04x: category 0x%X is reserved (0x0 system, 0xD effects); "
                      "applications use categories 0x1-0xF except 0xD",
                      kind, BP_KIND_CATEGORY(kind));
    return BP_OK;
}

bp_status bp_name_validate(const char *what, const char *name) {
    size_t len = name ? strnlen(name, BP_NAME_MAX + 1) : 0;
    bool ok = len > 0 && len <= BP_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-';
    }
    return ok ? BP_OK
              : bp_err(BP_EINVAL, "%s must be 1..%d bytes of [A-Za-z0-9._-]", what, BP_NAME_MAX);
}
