#!/usr/bin/env bash
# Mutation smoke test of the critical seams (frame decode, recovery, CAS/idempotency, the hash
# chain, batch atomicity, group commit): for each mutant in scripts/mutants.txt, replace the
# original text in a scratch copy of the tree, rebuild, run the named tests, and count the
# mutant killed when a test fails (or the build breaks). Prints the share killed and lists
# the survivors.   Usage: scripts/mutate.sh [LIST]   (make mutants)
# LIST lines: file @@ original text @@ mutant text @@ ctest -R regex
set -uo pipefail
cd "$(dirname "$0")/.."
LIST=${1:-scripts/mutants.txt}
WORK=${MUTATE_DIR:-build-mut}
SRC="$WORK/src-tree"
rm -rf "$SRC" && mkdir -p "$SRC"
git ls-files -z | tar --null -T - -cf - | tar -C "$SRC" -xf -
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
cmake --build "$WORK/build" -j "$(nproc)" >/dev/null || exit 2
total=0 killed=0 survivors=()
trim() { sed 's/^ *//; s/ *$//'; }
while IFS= read -r line; do
  [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
  file=$(awk -F'@@' '{ print $1 }' <<<"$line" | trim)
  orig=$(awk -F'@@' '{ print $2 }' <<<"$line" | trim)
  mut=$(awk -F'@@' '{ print $3 }' <<<"$line" | trim)
  tests=$(awk -F'@@' '{ print $4 }' <<<"$line" | trim)
  total=$((total + 1))
  cp "$SRC/$file" "$WORK/saved"
  if ! O="$orig" M="$mut" perl -0pi -e 'my $o = $ENV{O}; my $m = $ENV{M}; s/\Q$o\E/$m/ or exit 3' "$SRC/$file"; then
    echo "mutant $total: original text not found in $file: $orig" >&2
    exit 2
  fi
  if ! cmake --build "$WORK/build" -j "$(nproc)" >/dev/null 2>&1; then
    verdict=killed; why="build"
  elif (cd "$WORK/build" && timeout 180 ctest -R "$tests" >/dev/null 2>&1); then
    verdict=SURVIVED; why=""
  else
    verdict=killed; why="tests"
  fi
  cp "$WORK/saved" "$SRC/$file"
  if [ "$verdict" = killed ]; then killed=$((killed + 1)); else survivors+=("$file: $orig  ->  $mut"); fi
  printf '%-8s %s: %s  ->  %s (%s)\n' "$verdict" "$file" "$orig" "$mut" "${why:-$tests}"
done <"$LIST"
cmake --build "$WORK/build" -j "$(nproc)" >/dev/null 2>&1
echo
echo "mutants: $killed of $total killed ($((100 * killed / (total ? total : 1)))%)"
for s in "${survivors[@]}"; do echo "survivor: $s"; done
[ "$total" -gt 0 ] && [ $((100 * killed)) -ge $((90 * total)) ]
