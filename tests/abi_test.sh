#!/usr/bin/env bash
# The installed libbatpak.so against the committed ABI baseline (abi/libbatpak.abi, made at
# the version in abi/VERSION), by scripts/abi-check.sh with abi/batpak.suppr: fails on an
# incompatible change, and on additions unless BP_VERSION_MINOR is above the baseline's
# (doc/API.md rule 10). Skipped (77) without abidiff or without debug info.
#   usage: abi_test.sh BUILD_DIR SOURCE_DIR SCRATCH_DIR
set -u
BUILD=$1
SRC=$2
WORK=$3
for t in abidw abidiff readelf; do
    command -v "$t" >/dev/null 2>&1 || {
        echo "abi test: skipped: $t not found (scripts/install-deps.sh installs abigail-tools)" >&2
        exit 77
    }
done
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null || exit 1
P=$WORK/prefix
lib=$(find "$P" -name 'libbatpak.so.*' -type f | head -1)
[ -n "$lib" ] || { echo "abi test: no libbatpak.so.* installed under $P" >&2; exit 1; }
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "abi test: skipped: $lib has no debug info, which abidiff needs (configure with" \
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo or Debug, as make build does)" >&2
    exit 77
fi
cur=$(sed -n 's/^#define BP_VERSION_STRING "\(.*\)"/\1/p' "$P/include/batpak/common.h")
base=$(head -n 1 "$SRC/abi/VERSION")
if [ -z "$cur" ] || [ -z "$base" ]; then echo "abi test: cannot read the versions" >&2; exit 1; fi
echo "abi test: $(basename "$lib") at $cur against the baseline of $base"
bash "$SRC/scripts/abi-check.sh" compare "$SRC/abi/libbatpak.abi" "$base" "$lib" \
    "$P/include/batpak" "$SRC/abi/batpak.suppr" "$cur"
