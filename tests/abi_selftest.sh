#!/usr/bin/env bash
# The ABI check can fail: a tiny library (tests/abi_selftest/) is built as a baseline and
# then once per change, and scripts/abi-check.sh, with the project's suppressions
# (abi/batpak.suppr), must call each change what it is and pass or fail it as
# tests/abi_test.sh would. Skipped (77) without abidw/abidiff.
#   usage: abi_selftest.sh SOURCE_DIR SCRATCH_DIR
set -u
SRC=$1
WORK=$2
for t in abidw abidiff cc readelf; do
    command -v "$t" >/dev/null 2>&1 || {
        echo "abi_selftest: skipped: $t not found (scripts/install-deps.sh installs abigail-tools)" >&2
        exit 77
    }
done
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
T=$SRC/tests/abi_selftest
CHECK=$SRC/scripts/abi-check.sh
SUPPR=$SRC/abi/batpak.suppr
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

build() { # VARIANT (empty: the baseline)
    local def=""
    [ -n "$1" ] && def=-DSAMPLE_$1
    # shellcheck disable=SC2086
    cc -std=c11 -g -O1 -shared -fPIC $def -I"$T/include" "$T/sample.c" \
        -Wl,-soname,libsample.so.1 -o "$WORK/lib${1:-BASE}.so" || fail "cannot build variant ${1:-BASE}"
}

# expect VARIANT CUR_VERSION VERDICT EXIT [TEXT]: the check of VARIANT's library, its headers at
# CUR_VERSION against the baseline made at 1.2.0, says VERDICT and exits EXIT (and TEXT)
expect() {
    local v=$1 cur=$2 verdict=$3 code=$4 text=${5:-}
    out=$(bash "$CHECK" compare "$WORK/base.abi" 1.2.0 "$WORK/lib$v.so" "$T/include" "$SUPPR" "$cur" 2>&1)
    got=$?
    grep -q "^abi-check: verdict: $verdict$" <<<"$out" ||
        fail "$v at $cur: want verdict $verdict:
$out"
    [ "$got" -eq "$code" ] || fail "$v at $cur: exit $got, want $code:
$out"
    [ -z "$text" ] || grep -qF -- "$text" <<<"$out" || fail "$v at $cur: no '$text' in:
$out"
}

for v in "" APPEND ADD REORDER RETYPE PARAM REMOVE ENUM_VALUE; do build "$v"; done
bash "$CHECK" dump "$WORK/libBASE.so" "$T/include" "$WORK/base.abi" || fail "dump"
# the dump names no machine path
grep -q "path='/" "$WORK/base.abi" && fail "the ABI dump holds absolute paths"

expect BASE 1.2.0 same 0
expect BASE 1.2.1 same 0
# additions: allowed once the minor (or major) version is above the baseline's
expect APPEND 1.2.0 additions 1 "additions: bump BP_VERSION_MINOR and run make abi-baseline"
expect APPEND 1.2.3 additions 1 "additions: bump BP_VERSION_MINOR"
expect APPEND 1.3.0 additions 0 "struct bp_sample"
expect ADD 1.2.0 additions 1 "additions: bump BP_VERSION_MINOR and run make abi-baseline"
expect ADD 1.3.0 additions 0 "bp_sample_new"
expect ADD 2.0.0 additions 0
# incompatible whatever the version says (the baseline must be made again after a break)
expect REORDER 1.3.0 incompatible 1 "a type changed in another way than members appended"
expect REORDER 1.3.0 incompatible 1 "bump BP_VERSION_MAJOR and run make abi-baseline"
expect REORDER 2.0.0 incompatible 1 "a new major version over the baseline's 1.2.0: if the break is meant, run make abi-baseline"
expect RETYPE 1.3.0 incompatible 1 "bp_sample::b"
expect PARAM 1.3.0 incompatible 1 "bp_sample_scale"
expect REMOVE 1.3.0 incompatible 1 "bp_sample_old"
expect ENUM_VALUE 1.3.0 incompatible 1 "BP_SAMPLE_FANCY"
# the suppression is what makes an appended member an addition: without it, a changed function
: >"$WORK/none.suppr"
out=$(bash "$CHECK" compare "$WORK/base.abi" 1.2.0 "$WORK/libAPPEND.so" "$T/include" "$WORK/none.suppr" 1.3.0 2>&1)
grep -q "^abi-check: verdict: incompatible$" <<<"$out" ||
    fail "APPEND without abi/batpak.suppr is not incompatible (does the suppression do anything?):
$out"
# a tool error is a failure of its own (exit 2), not a verdict
echo "not ABIXML" >"$WORK/bad.abi"
bash "$CHECK" compare "$WORK/bad.abi" 1.2.0 "$WORK/libBASE.so" "$T/include" "$SUPPR" 1.2.0 >/dev/null 2>&1
[ $? -eq 2 ] || fail "a broken baseline does not make abi-check exit 2"

echo "$((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
