#!/usr/bin/env bash
# abi-check.sh — the ABI of a shared library against a committed baseline, with libabigail
# (abidw, abidiff; Debian abigail-tools). doc/API.md rule 10 says what may change.
#
#   abi-check.sh dump LIB HEADERS_DIR OUT
#       write LIB's ABI (the functions, variables and types its public headers in
#       HEADERS_DIR declare) to OUT as ABIXML
#   abi-check.sh baseline LIB HEADERS_DIR ABI_DIR
#       dump to ABI_DIR/libbatpak.abi, and write the version of HEADERS_DIR/common.h
#       (BP_VERSION_STRING) to ABI_DIR/VERSION: `make abi-baseline`
#   abi-check.sh compare BASELINE BASE_VERSION LIB HEADERS_DIR SUPPR CUR_VERSION
#       compare LIB (its public headers in HEADERS_DIR) with BASELINE, made at BASE_VERSION,
#       under the suppressions SUPPR; CUR_VERSION is the version LIB's headers say. Prints
#       "abi-check: verdict: same|additions|incompatible" and exits 0 when the change is
#       allowed: none, or only additions with a higher minor (or major) version than the
#       baseline's. Exits 1 otherwise, and 2 when abidiff fails.
#
# Two abidiff passes, and the change is the worse of their verdicts:
#  1. the policy: suppressions SUPPR, types not declared in HEADERS_DIR filtered out
#     (--headers-dir2, --drop-private-types); the report shown to the reader;
#  2. the guard: --leaf-changes-only with neither. libabigail 2.2 hides too much in pass 1:
#     "has_data_member_inserted_at = end" also hides a reorder or a changed member type when
#     nothing was removed and the struct did not shrink, and a member whose type changed to
#     another typedef from a system header (int64_t to int32_t) is filtered as private when
#     compared with a baseline file. Pass 2 lists each changed type by itself.
# What counts as what:
#  - incompatible: abidiff's exit bit 8 (a function, variable or symbol removed, the SONAME
#    changed); a function or variable reported changed (a parameter or return type, a
#    struct it reaches); a changed type that is not a pure append: its size grew and every
#    member new to it lies past the old end (a member put in the tail padding leaves the
#    size, and so struct_size, as it was: not allowed either).
#  - additions: functions or variables added, or members appended to a struct. Rule 10:
#    bump BP_VERSION_MINOR and regenerate the baseline.
# Both passes keep abidiff's default harmless filters: an enumerator added, a member renamed
# and a typedef renamed are not reported.
set -u

die() { echo "abi-check: $*" >&2; exit 2; }

# the flags of every dump. --short-locs, not --no-show-locs: abidiff tells public types
# from private ones by the header file a type is declared in, and treats a baseline type
# without a location as private, so every change of a struct would be filtered out.
dump() { # LIB HEADERS_DIR OUT
    abidw --headers-dir "$2" --drop-private-types --short-locs --no-corpus-path --no-elf-needed \
        --no-comp-dir-path --type-id-style hash --out-file "$3" "$1" ||
        die "abidw failed on $1"
}

has_debug_info() { readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; }

# major minor of "MAJOR.MINOR.PATCH"
version_mm() { echo "$1" | awk -F. '{print $1 + 0, $2 + 0}'; }

# Classify the type blocks of a --leaf-changes-only report (no locations). A block starts
# with "'struct bp_x' changed:" and holds the indented lines after it. Prints "A <type>" for
# a pure append (the size grew; every other line is a member inserted at or past the old
# size) and "X <line>" for each line of any other block.
classify_types() {
    awk -v q="'" '
    function flush() {
        if (name == "") return
        if (grew && only_ins) print "A " name
        else { n = split(block, l, "\n"); for (i = 1; i < n; i++) print "X " l[i] }
        name = ""
    }
    substr($0, 1, 1) == q && / changed:$/ {
        flush(); name = substr($0, 1, length($0) - length(" changed:")); block = $0 "\n"
        grew = 0; only_ins = 1; old = -1; next
    }
    /^[^ ]/ { flush(); next }
    name != "" {
        block = block $0 "\n"
        if ($0 ~ /^  type size changed from [0-9]+ to [0-9]+ \(in bits\)$/) {
            old = $5 + 0; grew = ($7 + 0 > old)
        } else if ($0 ~ /^  [0-9]+ data member insertions?:$/ || $0 ~ /^ *$/) {
        } else if ($0 ~ /, at offset [0-9]+ \(in bits\)$/) {
            off = $0; sub(/.*, at offset /, "", off); off = off + 0
            if (old < 0 || off < old) only_ins = 0
        } else only_ins = 0
    }
    END { flush() }'
}

# true when an abidiff report's summaries count a removed or changed function or variable
removed_or_changed() {
    grep -E '^[A-Za-z /]+summary:' | grep -vE '^(Leaf changes|Changed leaf types) summary' |
        grep -qE '[1-9][0-9]* (Removed|Changed)'
}

compare() { # BASELINE BASE_VERSION LIB HEADERS_DIR SUPPR CUR_VERSION
    local baseline=$1 base_v=$2 lib=$3 hdrs=$4 suppr=$5 cur_v=$6
    local out1 out2 rc1 rc2 verdict=same why=""
    out1=$(abidiff --fail-no-debug-info --suppressions "$suppr" --headers-dir2 "$hdrs" \
        --drop-private-types "$baseline" "$lib" 2>&1)
    rc1=$?
    out2=$(abidiff --fail-no-debug-info --leaf-changes-only --no-show-locs "$baseline" "$lib" 2>&1)
    rc2=$?
    if [ $((rc1 & 3)) -ne 0 ] || [ $((rc2 & 3)) -ne 0 ]; then
        printf '%s\n%s\n' "$out1" "$out2" >&2
        die "abidiff failed (exit $rc1, $rc2): a tool error, not an ABI verdict"
    fi
    local types hidden added_types
    types=$(echo "$out2" | classify_types)
    hidden=$(echo "$types" | sed -n 's/^X //p')
    added_types=$(echo "$types" | sed -n 's/^A //p')
    if echo "$out1" | grep -q '^SONAME changed'; then
        verdict=incompatible why="the SONAME changed ($(echo "$out1" | sed -n 's/^SONAME changed from //p'))"
    elif [ $(((rc1 | rc2) & 8)) -ne 0 ]; then
        verdict=incompatible why="abidiff: a function, variable or symbol was removed"
    elif echo "$out1" | removed_or_changed || echo "$out2" | removed_or_changed; then
        verdict=incompatible why="abidiff: a function or variable changed"
    elif [ -n "$hidden" ]; then
        verdict=incompatible why="a type changed in another way than members appended at its end"
    elif [ $(((rc1 | rc2) & 4)) -ne 0 ]; then
        verdict=additions
    fi
    local bmaj bmin cmaj cmin
    read -r bmaj bmin <<<"$(version_mm "$base_v")"
    read -r cmaj cmin <<<"$(version_mm "$cur_v")"
    echo "abi-check: verdict: $verdict"
    case $verdict in
    same)
        echo "abi-check: the ABI is the baseline's ($base_v)"
        return 0 ;;
    additions)
        echo "$out1"
        [ -z "$added_types" ] || printf 'members appended to:\n%s\n' "$added_types"
        if [ "$cmaj" -gt "$bmaj" ] || { [ "$cmaj" -eq "$bmaj" ] && [ "$cmin" -gt "$bmin" ]; }; then
            echo "abi-check: additions under version $cur_v (baseline $base_v): allowed;" \
                "record them with make abi-baseline"
            return 0
        fi
        echo "abi-check: additions: bump BP_VERSION_MINOR and run make abi-baseline" \
            "(the headers say $cur_v, the baseline was made at $base_v)" >&2
        return 1 ;;
    *)
        echo "$out1"
        [ -z "$hidden" ] || printf '\nchanged types (abidiff --leaf-changes-only):\n%s\n' "$hidden"
        echo "abi-check: incompatible ABI change: $why." >&2
        if [ "$cmaj" -gt "$bmaj" ]; then
            echo "abi-check: the headers say $cur_v, a new major version over the baseline's" \
                "$base_v: if the break is meant, run make abi-baseline to record the new ABI" >&2
        else
            echo "abi-check: an existing function, variable, enumerator or struct layout must" \
                "not change (doc/API.md rules 6 and 10): undo the change, or, if the break is" \
                "meant, bump BP_VERSION_MAJOR and run make abi-baseline" >&2
        fi
        return 1 ;;
    esac
}

cmd=${1:-}
shift || true
for t in abidw abidiff readelf; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (Debian abigail-tools, binutils)"
done
case $cmd in
dump)
    [ $# -eq 3 ] || die "usage: abi-check.sh dump LIB HEADERS_DIR OUT"
    has_debug_info "$1" || die "$1 has no debug info (build with -g: RelWithDebInfo or Debug)"
    dump "$1" "$2" "$3" ;;
baseline)
    [ $# -eq 3 ] || die "usage: abi-check.sh baseline LIB HEADERS_DIR ABI_DIR"
    has_debug_info "$1" || die "$1 has no debug info (build with -g: RelWithDebInfo or Debug)"
    v=$(sed -n 's/^#define BP_VERSION_STRING "\(.*\)"/\1/p' "$2/common.h")
    [ -n "$v" ] || die "no BP_VERSION_STRING in $2/common.h"
    mkdir -p "$3"
    dump "$1" "$2" "$3/libbatpak.abi"
    echo "$v" >"$3/VERSION"
    echo "abi-check: $3/libbatpak.abi is the ABI of version $v" ;;
compare)
    [ $# -eq 6 ] || die "usage: abi-check.sh compare BASELINE BASE_VERSION LIB HEADERS_DIR SUPPR CUR_VERSION"
    compare "$@" ;;
*)
    die "usage: abi-check.sh dump|baseline|compare ..." ;;
esac
