#!/usr/bin/env bash
# make test-libonly: a library-only build (BATPAK_BUILD_* OFF, BATPAK_WITH_NATS and _UI OFF) in $1
# built the library and the CLI and nothing else, and they work: the CLI runs a store through
# init, append, get and verify, and says what a command it was built without needs (relay,
# ui).
set -euo pipefail
B=${1:?usage: libonly-check.sh BUILD_DIR}
fail() { echo "libonly-check: $*" >&2; exit 1; }
[ -x "$B/batpak" ] || fail "$B/batpak was not built"
ls "$B"/libbatpak.so.* >/dev/null 2>&1 || fail "$B/libbatpak.so was not built"
[ -e "$B/libbatpak.a" ] || fail "$B/libbatpak.a was not built"
extra=$(find "$B" -maxdepth 2 -type f -perm -u+x \( -name 'test_*' -o -name 'fuzz_*' -o -name 'example_*' -o -name 'batpak-bench*' \) | head -5)
[ -z "$extra" ] || fail "a library-only build built more than the library and the CLI: $extra"
grep -q '^BUILD_TESTING:BOOL=ON' "$B/CMakeCache.txt" && fail "BUILD_TESTING is on"
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
"$B/batpak" --dir "$D/s" init >/dev/null || fail "batpak init failed"
"$B/batpak" --dir "$D/s" append acct:1 bank 0x1001 '{"a":1}' >/dev/null || fail "batpak append failed"
"$B/batpak" --dir "$D/s" verify >/dev/null || fail "batpak verify failed"
"$B/batpak" --dir "$D/s" stream acct:1 | grep -q '"acct:1"' || fail "batpak stream did not show the event"
set +e
out=$("$B/batpak" --dir "$D/s" relay --help 2>&1 </dev/null; "$B/batpak" --dir "$D/s" relay nats://127.0.0.1:1 s 2>&1 </dev/null)
set -e
echo "$out" | grep -qi "nats" || fail "batpak relay without NATS did not say so: $out"
set +e
out=$("$B/batpak" --dir "$D/s" ui --listen 127.0.0.1:0 2>&1 </dev/null)
set -e
echo "$out" | grep -qi "libmicrohttpd" || fail "batpak ui without libmicrohttpd did not say so: $out"
echo "libonly-check: the library and the CLI built alone, and the CLI works"
