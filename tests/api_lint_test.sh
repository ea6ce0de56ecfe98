#!/usr/bin/env bash
# CTest api_lint: the public headers pass scripts/api-lint.py, and the lint finds each kind of
# breach planted in a copy of them (so that it can fail).
set -euo pipefail
SRC=$1; WORK=$2
python3 "$SRC/scripts/api-lint.py" "$SRC/include"
rm -rf "$WORK"; mkdir -p "$WORK"
cp -r "$SRC/include" "$WORK/include"
cat >>"$WORK/include/batpak/read.h" <<'H'
typedef struct bp_planted { uint64_t a; } bp_planted;
#define BP_PLANTED_INIT { 0 }
BP_API void bp_planted_get(bp_store *s, bp_planted *out);
BP_API bp_status bp_planted_open(bp_store *s, const char *name, int flags, bp_iter **out);
struct json_t;
H
if out=$(python3 "$SRC/scripts/api-lint.py" "$WORK/include" 2>&1); then
    echo "api_lint: the planted breaches were not found:" >&2
    echo "$out" >&2
    exit 1
fi
for want in "rule 6: bp_planted does not start with uint32_t struct_size" \
            "rule 1: bp_planted_get returns 'void'" \
            "rule 2: bp_planted_open: the out-parameter" \
            "rule 8: 'json_t'"; do
    if ! grep -qF "$want" <<<"$out"; then
        echo "api_lint: missed: $want" >&2
        echo "$out" >&2
        exit 1
    fi
done
echo "api_lint: clean, and each planted breach found"
