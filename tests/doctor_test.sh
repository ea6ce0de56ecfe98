#!/usr/bin/env bash
# scripts/doctor: passes on this machine (install-deps.sh ran), and when a tool is missing it
# fails naming it and the exact Debian package to install.
#   usage: doctor_test.sh SOURCE_DIR SCRATCH_DIR
set -u
SRC=$1
SCRATCH=$2
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH/bin" || exit 1
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

out=$(bash "$SRC/scripts/doctor" 2>&1) || fail "doctor fails on a complete machine: $out"
grep -q "libsodium (pkg-config) *ok" <<<"$out" || fail "doctor does not report libsodium: $out"

# the same PATH without b3sum and cmake: every other command is a link to the real one
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
        n=$(basename "$f")
        case $n in b3sum | cmake) continue ;; esac
        [ -x "$f" ] && [ ! -e "$SCRATCH/bin/$n" ] && ln -s "$f" "$SCRATCH/bin/$n"
    done
done
out=$(PATH="$SCRATCH/bin" bash "$SRC/scripts/doctor" 2>&1)
code=$?
[ $code -eq 1 ] || fail "doctor exits $code with b3sum and cmake missing, want 1"
grep -q "b3sum .*MISSING  (Debian package b3sum" <<<"$out" || fail "no line for b3sum: $out"
grep -q "cmake .*MISSING  (Debian package cmake" <<<"$out" || fail "no line for cmake: $out"
grep -q "apt-get install -y --no-install-recommends cmake b3sum" <<<"$out" ||
    fail "no install command naming both: $out"
grep -q "msgpack (pkg-config) *ok" <<<"$out" || fail "the rest is no longer found: $out"

echo "$((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
