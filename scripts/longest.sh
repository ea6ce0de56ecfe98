#!/usr/bin/env bash
# longest.sh [SRCDIR] [--check] — the longest source files and functions under src/.
# Prints the ten longest of each; with --check, exits 1 naming every file over 800 lines and
# every function over 150 lines (doc/API.md "Size"). A function is counted from the first
# line of its signature (at column 0) to its closing brace (a line that is just "}").
set -u
root=.
check=0
for a in "$@"; do
  case $a in
    --check) check=1 ;;
    *) root=$a ;;
  esac
done
files=$(find "$root/src" -name '*.c' -o -name '*.h' | sort)
[ -n "$files" ] || { echo "longest.sh: no sources under $root/src" >&2; exit 1; }

# file lines
flist=$(for f in $files; do echo "$(wc -l <"$f") ${f#"$root"/}"; done | sort -rn)
# functions: name and length
funcs=$(for f in $files; do
  awk -v file="${f#"$root"/}" '
    /^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ && !start { start = NR; sig = $0 }
    /^[A-Za-z_].*[;}][[:space:]]*$/ && start == NR { start = 0 }
    /^}$/ && start {
      name = sig; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n]
      print NR - start + 1, file ":" start, name; start = 0
    }
    /^};?/ && !/^}$/ { start = 0 }
  ' "$f"
done | sort -rn)

echo "longest files (lines):"
echo "$flist" | head -10 | sed 's/^/  /'
echo "longest functions (lines):"
echo "$funcs" | head -10 | sed 's/^/  /'

[ $check = 1 ] || exit 0
bad=0
while read -r n f; do
  [ "$n" -gt 800 ] && { echo "longest.sh: $f has $n lines (at most 800)" >&2; bad=1; }
done <<<"$flist"
while read -r n where name; do
  [ -n "$n" ] && [ "$n" -gt 150 ] && { echo "longest.sh: $name ($where) has $n lines (at most 150)" >&2; bad=1; }
done <<<"$funcs"
exit $bad
