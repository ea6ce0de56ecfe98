#!/usr/bin/env bash
# layer-check.sh SRCDIR CORE_SO [--cli BIN LIB_SO FMT_LIB] UPPER_OBJ... — the store core knows
# nothing of the layers built on it, and the CLI reaches the library only through its public
# API (doc/API.md "Layers"):
#  1. CORE_SO, the core (src/core, src/format, src/store, src/platform) linked alone as a
#     shared library with -Wl,--no-undefined, built: it references nothing of the upper
#     layers (the link would fail);
#  2. it defines no symbol that an upper object (api, guard, typed, deliver, replicate)
#     defines: no object of theirs is in it;
#  3. no core source includes an upper header;
#  4. no source or header cites a document that is not in the repository (SPEC);
#  5. no src/cli file includes an internal header other than cli/ and format/ ones, and only
#     cmd_dump.c includes format/ (the CLI links libbatpak.so, whose internals are hidden,
#     plus bp_fmt, the format layer, for `batpak dump`);
#  with --cli, the built tool BIN, the library LIB_SO it links and the archive FMT_LIB:
#  6. BIN defines no symbol that LIB_SO exports: a copy in the program would stand in for the
#     library's (a second thread-local bp_last_error, say);
#  7. every bp_ symbol FMT_LIB references it also defines: the format layer in the tool
#     calls nothing in LIB_SO, so its error messages stay in its own copy of core/error.c.
#  8. no upper source (nor the CLI or the benchmarks) includes a store header but
#     store/store.h, the store's narrow interface: not store_impl.h, index.h, recover.h.
set -u
src=$1
so=$2
shift 2
cli_bin="" lib_so="" fmt_lib=""
if [ "${1:-}" = --cli ]; then
    cli_bin=$2 lib_so=$3 fmt_lib=$4
    shift 4
fi
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

# 5: what the CLI's sources include
for f in "$src"/src/cli/*.c "$src"/src/cli/*.h; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
        case $inc in
            cli/*) ;;
            format/*) [ "$(basename "$f")" = cmd_dump.c ] ||
                say "${f#"$src"/}: includes $inc (only cmd_dump.c reads the format layer)" ;;
            ../* | */../*) say "${f#"$src"/}: includes $inc (a relative path out of src/cli)" ;;
            *) if [ -e "$src/src/$inc" ] || [ -e "$src/src/cli/$inc" ] ||
                [ -d "$src/src/${inc%%/*}" ]; then
                   say "${f#"$src"/}: includes the internal header $inc (the CLI is on the public API)"
               fi ;;
        esac
    done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1/p' "$f")
done

if [ -n "$cli_bin" ]; then
    for f in "$cli_bin" "$lib_so" "$fmt_lib"; do
        [ -f "$f" ] || { echo "layer-check: $f is missing" >&2; exit 1; }
    done
    # 6: nm lists the program's symbols whatever their binding or visibility
    exported=$(nm -D --defined-only "$lib_so" | awk '{print $3}' | sed 's/@.*//' | sort -u)
    [ -n "$exported" ] || say "$lib_so exports nothing (wrong argument?)"
    cli_defs=$(nm --defined-only "$cli_bin" | awk 'NF == 3 {print $3}' | sort -u)
    dup=$(comm -12 <(echo "$exported") <(echo "$cli_defs"))
    [ -z "$dup" ] || say "the CLI defines symbols that libbatpak.so exports (link the library, not a copy):
$dup"
    # 7: the format layer in the tool is self-contained
    fmt_defs=$(nm --defined-only "$fmt_lib" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u)
    fmt_refs=$(nm --undefined-only "$fmt_lib" 2>/dev/null | awk '$2 ~ /^bp_/ {print $2}' | sort -u)
    out=$(comm -23 <(echo "$fmt_refs") <(echo "$fmt_defs") | grep . || true)
    [ -z "$out" ] || say "bp_fmt calls into the library (its messages would not reach dump):
$out"
fi

[ $fail = 0 ] && echo "layer-check: the core ($(echo "$core_syms" | wc -l) symbols) stands alone; the modules include store/store.h only; the CLI includes only cli/ and (dump) format/${cli_bin:+, and defines no symbol of libbatpak.so}"
exit $fail
