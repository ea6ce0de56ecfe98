#!/usr/bin/env bash
# CTest ui: `batpak ui` as a user meets it, beside a live writer: every JSON endpoint, the page,
# and bad requests (unknown entity, bad numbers, huge limits, path tricks, other methods), each
# a 4xx with a message; nothing it does writes to the store. Skipped (77) when the CLI was
# built without libmicrohttpd. Usage: ui_test.sh BATPAK SCRATCH LIVE_WRITER
set -euo pipefail
B=${1:?usage: ui_test.sh BATPAK SCRATCH LIVE_WRITER}
S=${2:?}
W=${3:?}
fail() { echo "ui_test: $*" >&2; exit 1; }
rm -rf "$S" && mkdir -p "$S"
D=$S/store
"$B" --dir "$D" ui --listen 127.0.0.1:0 >/dev/null 2>"$S/probe.err" </dev/null && true
if grep -q "not compiled into" "$S/probe.err"; then echo "ui_test: skipped (no libmicrohttpd)"; exit 77; fi
"$B" --dir "$D" init >/dev/null
for i in 1 2 3; do "$B" --dir "$D" append "acct:$i" bank 0x1001 "{\"add\":$i}" >/dev/null; done
"$B" --dir "$D" append acct:1 bank 0x1001 '{"add":10}' >/dev/null
# a live writer holds the store and appends (tests/live_writer.c)
"$W" "$D" >"$S/w.out" 2>&1 &
WPID=$!
UPID=
cleanup() { kill "$WPID" 2>/dev/null; [ -n "$UPID" ] && kill "$UPID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q ready "$S/w.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$S/w.out" || fail "the live writer did not start: $(cat "$S/w.out")"
"$B" --dir "$D" ui --listen 127.0.0.1:0 >"$S/url" 2>"$S/ui.err" </dev/null &
UPID=$!
for _ in $(seq 50); do [ -s "$S/url" ] && break; sleep 0.1; done
U=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$S/url")
[ -n "$U" ] || fail "no url printed: $(cat "$S/url" "$S/ui.err")"
get() { curl -s -o "$S/body" -w '%{http_code}' "$@"; }
expect() { # CODE NEEDLE ARGS...
  local want=$1 needle=$2; shift 2
  local got; got=$(get "$@")
  [ "$got" = "$want" ] || fail "$*: HTTP $got, want $want: $(cat "$S/body")"
  grep -q -- "$needle" "$S/body" || fail "$*: no '$needle' in $(cat "$S/body")"
}
expect 200 '"events":' "${U}api/store"
grep -q '"writer_pid":[1-9]' "$S/body" || fail "the live writer's pid is not shown: $(cat "$S/body")"
expect 200 '"entity":"acct:2"' "${U}api/entities?prefix=acct"
expect 200 '"entity":"acct:3"' "${U}api/entities?prefix=acct:&after=acct:2&limit=5"
expect 200 '"chain":"start"' "${U}api/stream?entity=acct:1"
grep -q '"chain":"ok"' "$S/body" || fail "the second event's link is not marked ok: $(cat "$S/body")"
grep -q '"payload":{"add":10}' "$S/body" || fail "payload not rendered as JSON"
expect 200 '"chain":"unchecked"' "${U}api/stream?entity=acct:1&after=1"
expect 200 '<title>batpak</title>' "${U}"
# what the live writer appends shows on the next request (the handle refreshes)
n1=$(curl -s "${U}api/store" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
sleep 0.3
n2=$(curl -s "${U}api/store" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
[ "$n2" -gt "$n1" ] || fail "the writer's new events are not shown: $n1 then $n2"
# bad requests: 4xx with a message
expect 404 '"error":"entity' "${U}api/stream?entity=nobody"
expect 400 '"error":"entity: missing' "${U}api/stream"
expect 400 'limit' "${U}api/entities?limit=abc"
expect 400 'limit' "${U}api/entities?limit=1000000"
expect 400 'after' "${U}api/stream?entity=acct:1&after=-1"
expect 404 'no such page' --path-as-is "${U}../../etc/passwd"
expect 404 'no such page' "${U}api/nothing"
expect 405 'read-only' -X POST -d 'x=1' "${U}api/store"
expect 405 'read-only' -X DELETE "${U}api/stream?entity=acct:1"
# nothing written: the store holds what the writer appended, verify is clean
n=$(curl -s "${U}api/store" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
[ "$n" -ge 5 ] || fail "events: $n"
# refused listen addresses, with a message at once
if "$B" --dir "$D" ui --listen 0.0.0.0:0 >/dev/null 2>"$S/err" </dev/null; then fail "0.0.0.0 accepted"; fi
grep -q "loopback" "$S/err" || fail "no reason for 0.0.0.0: $(cat "$S/err")"
if "$B" --dir "$D" ui --listen nonsense >/dev/null 2>"$S/err" </dev/null; then fail "nonsense accepted"; fi
grep -q "HOST:PORT" "$S/err" || fail "no reason for nonsense: $(cat "$S/err")"
echo "ui_test: every endpoint and bad request answered as it should, beside a live writer"
