#!/usr/bin/env bash
# layer-check.sh SRCDIR CORE_SO UPPER_OBJ... — the store core knows nothing of the layers
# built on it (doc/API.md "Layers"):
#  1. CORE_SO, the core (src/core, src/format, src/store, src/platform) linked alone as a
#     shared library with -Wl,--no-undefined, built: it references nothing of the upper
#     layers (the link would fail);
#  2. it defines no symbol that an upper object (api, guard, typed, deliver, replicate)
#     defines: no object of theirs is in it;
#  3. no core source includes an upper header;
#  4. no source or header cites a document that is not in the repository (SPEC);
#  5. no upper source (nor the CLI or the benchmarks) includes a store header but
#     store/store.h, the store's narrow interface: not store_impl.h, index.h, recover.h.
set -u
src=$1
so=$2
shift 2
fail=0
say() { echo "layer-check: $*" >&2; fail=1; }

[ -f "$so" ] || { echo "layer-check: $so is missing (build the target bp_core_check)" >&2; exit 1; }

core_syms=$(nm --defined-only --extern-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u)
upper_syms=$(for o in "$@"; do nm --defined-only --extern-only "$o"; done |
  awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u)
[ -n "$upper_syms" ] || say "no symbol found in the upper objects (wrong arguments?)"
[ -n "$core_syms" ] || say "no symbol found in $so"
both=$(comm -12 <(echo "$core_syms") <(echo "$upper_syms"))
[ -z "$both" ] || say "the core library defines symbols of the upper layers:
$both"

inc=$(grep -rnE '#include "(api|typed|deliver|guard|replicate)/' \
  "$src/src/store" "$src/src/format" "$src/src/core" "$src/src/platform")
[ -z "$inc" ] || say "a core source includes an upper header:
$inc"

inner=$(grep -rnE '#include "store/' "$src/src/api" "$src/src/guard" "$src/src/typed" \
  "$src/src/deliver" "$src/src/replicate" "$src/src/cli" "$src/bench" | grep -v '"store/store\.h"')
[ -z "$inner" ] || say "a module includes a store header other than store/store.h (use store.h):
$inner"

spec=$(grep -rn 'SPEC §' "$src/src" "$src/include")
[ -z "$spec" ] || say "comments cite SPEC, which is not in the repository:
$spec"

[ $fail = 0 ] && echo "layer-check: the core ($(echo "$core_syms" | wc -l) symbols) stands alone; the modules include store/store.h only"
exit $fail
