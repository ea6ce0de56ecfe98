#!/usr/bin/env bash
# CTest ui and ui_browser: `batpak ui` as a user meets it, beside a live writer that runs a
# slow checkpointed worker. ui: every JSON endpoint over HTTP, the live tail, verify from the
# page, receipts, the login of --allow-remote, and bad requests (unknown entity, bad numbers and
# filters, huge limits and bodies, path tricks, other methods and hosts), each a 4xx with a
# message; nothing it does writes to the store. ui_browser (--browser): the page in headless
# Chromium (tests/ui_browser.py), which keeps a screenshot in SCRATCH/ui.png. Skipped (77)
# when the CLI was built without libmicrohttpd (or, for --browser, there is no chromium).
# Usage: ui_test.sh BATPAK SCRATCH LIVE_WRITER [--browser]
set -euo pipefail
B=${1:?usage: ui_test.sh BATPAK SCRATCH LIVE_WRITER [--browser]}
S=${2:?}
W=${3:?}
MODE=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { echo "ui_test: $*" >&2; exit 1; }
rm -rf "$S" && mkdir -p "$S"
D=$S/store
"$B" --dir "$D" ui --listen 127.0.0.1:0 >/dev/null 2>"$S/probe.err" </dev/null && true
if grep -q "not compiled into" "$S/probe.err"; then echo "ui_test: skipped (no libmicrohttpd)"; exit 77; fi
if [ "$MODE" = --browser ] && ! command -v chromium >/dev/null; then
  echo "ui_test: skipped (no chromium: scripts/install-deps.sh installs it)"; exit 77
fi
"$B" --dir "$D" init >/dev/null
# a stored type for the acct:* events, so the page names their kind
echo '{"name":"bank.Deposit","kind":4098,"version":1,"fields":[{"name":"add","type":"int64","shape":"one","n":0}]}' \
  | "$B" --dir "$D" schema --record - >/dev/null
for i in 1 2 3; do "$B" --dir "$D" append "acct:$i" bank 0x1002 "{\"add\":$i}" >/dev/null; done
"$B" --dir "$D" append acct:1 bank 0x1002 '{"add":10}' >"$S/unsigned.json"
# an entity whose first events a compaction removed: its first kept link cannot be checked
for i in 1 2; do "$B" --dir "$D" append old:1 old 0x1001 "{\"n\":$i}" >/dev/null; done
"$B" --dir "$D" tombstone old:1 --scope old >/dev/null
"$B" --dir "$D" append old:1 old 0x1001 '{"n":3}' >/dev/null
"$B" --dir "$D" compact --tombstoned >/dev/null
# a name a careless page would run as HTML
"$B" --dir "$D" append 'x:<img src=x onerror="window.pwned=1">' web 0x1001 '{"html":"<script>window.pwned=2</script>"}' >/dev/null
"$B" keygen --out "$S/k" >"$S/key.json"
KEY_ID=$(sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p' "$S/key.json")
"$B" --dir "$D" append acct:9 bank 0x1002 '{"add":9}' --sign-key "$S/k.key" >"$S/signed.json"
# a live writer holds the store, appends, and runs worker live.counter (tests/live_writer.c)
"$W" "$D" live.counter >"$S/w.out" 2>&1 &
WPID=$!
UPID=
cleanup() { [ -n "$WPID" ] && kill "$WPID" 2>/dev/null; [ -n "$UPID" ] && kill "$UPID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q ready "$S/w.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$S/w.out" || fail "the live writer did not start: $(cat "$S/w.out")"
"$B" --dir "$D" ui --listen 127.0.0.1:0 >"$S/url" 2>"$S/ui.err" </dev/null &
UPID=$!
for _ in $(seq 50); do [ -s "$S/url" ] && break; sleep 0.1; done
U=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$S/url")
[ -n "$U" ] || fail "no url printed: $(cat "$S/url" "$S/ui.err")"

if [ "$MODE" = --browser ]; then
  RECEIPT="$S/signed.json" /usr/bin/python3 "$HERE/ui_browser.py" "$U" "$S/ui.png"
  exit $?
fi

get() { curl -s -m 10 -o "$S/body" -w '%{http_code}' "$@" || true; } # (a timeout: its code is 200 or 000)
expect() { # CODE NEEDLE ARGS...
  local want=$1 needle=$2; shift 2
  local got; got=$(get "$@")
  [ "$got" = "$want" ] || fail "$*: HTTP $got, want $want: $(cat "$S/body")"
  grep -q -- "$needle" "$S/body" || fail "$*: no '$needle' in $(cat "$S/body")"
}
has() { grep -q -- "$1" "$S/body" || fail "$2: no '$1' in $(cat "$S/body")"; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9a-z.]*\).*/\1/p" "$S/body"; }

# the store
expect 200 '"events":' "${U}api/store"
has '"writer_pid":[1-9]' "the live writer's pid"
has '"open_of":"writer"' "the writer's open report"
has '"failed":false' "the fail state"
# entities, paged in name order, with counts and last activity
expect 200 '"entity":"acct:2"' "${U}api/entities?prefix=acct&limit=2"
has '"next":"acct:2"' "the next page's after"
has '"last_ms":1[0-9]\{12\}' "an entity's last activity"
expect 200 '"entity":"acct:3"' "${U}api/entities?prefix=acct:&after=acct:2&limit=5"
has '"next":null' "the last page"
# one entity's stream: chain marks, typed kind name, payload as JSON, paging
expect 200 '"chain":"start"' "${U}api/stream?entity=acct:1"
has '"chain":"ok"' "the second event's link"
has '"kind_name":"bank.Deposit"' "the stored schema's name of kind 0x1002"
has '"payload":{"add":10}' "the payload as JSON"
expect 200 '"chain":"ok"' "${U}api/stream?entity=acct:1&after=1"
has '"next":null' "the stream's last page"
expect 200 '"next":1' "${U}api/stream?entity=acct:1&limit=1"
expect 200 '"clock":4,.*"chain":"unchecked"' "${U}api/stream?entity=old:1"
# an entity's last activity is the time of its last event (found going back past the first
# window of 4,096 events: the writer appends until the store holds more than that)
for _ in $(seq 100); do
  [ "$(curl -s "${U}api/store" | grep -o '"published_seq":[0-9]*' | cut -d: -f2)" -gt 4200 ] && break; sleep 0.1
done
t_last=$(curl -s "${U}api/stream?entity=acct:1" | grep -o '"time_ms":[0-9]*' | sed -n 2p | cut -d: -f2)
curl -s "${U}api/entities?prefix=acct:1" | grep -q "\"entity\":\"acct:1\",\"events\":2,\"clock\":2,\"last_ms\":$t_last" \
  || fail "acct:1's last activity is not its last event's time $t_last: $(curl -s "${U}api/entities?prefix=acct:1")"
# workers and relays: the live writer's worker, behind the appends
for _ in $(seq 50); do get "${U}api/checkpoints" >/dev/null; grep -q live.counter "$S/body" && break; sleep 0.1; done
has '"id":"live.counter","kind":"worker","position":[1-9]' "the worker's checkpoint"
has '"workers":1' "the writer's running worker"
expect 200 '"name":"bank.Deposit"' "${U}api/kinds"
# what the live writer appends shows on the next request (the handle refreshes)
events() { curl -s "${U}api/store" | grep -o '"events":[0-9]*' | sed -n 1p | cut -d: -f2; }
n1=$(events)
sleep 0.3
n2=$(events)
[ "$n2" -gt "$n1" ] || fail "the writer's new events are not shown: $n1 then $n2"

# the live tail: a start event, then events appended after it, of its filter only
timeout 2 curl -sN "${U}api/tail?entity-prefix=live:2" >"$S/tail" || true
start=$(sed -n 's/^data: {"after":\([0-9]*\)}/\1/p' "$S/tail")
[ -n "$start" ] || fail "the tail has no start event: $(head -c 300 "$S/tail")"
seqs=$(sed -n 's/^id: //p' "$S/tail")
[ "$(echo "$seqs" | wc -l)" -ge 3 ] || fail "the tail showed no new events: $(head -c 300 "$S/tail")"
for q in $seqs; do [ "$q" -gt "$start" ] || fail "the tail shows seq $q from before its start $start"; done
grep '^data: {"event_id"' "$S/tail" | grep -qv '"entity":"live:2"' && fail "the tail's filter let another entity through"
grep -q '"kind_name"' "$S/tail" && fail "kind 0x1001 has no stored schema, yet a name"
# resumed after an event id (as EventSource does with Last-Event-ID)
first=$(echo "$seqs" | sed -n 1p)
timeout 1 curl -sN -H "Last-Event-ID: $first" "${U}api/tail?entity-prefix=live:2" >"$S/tail2" || true
grep -q "^data: {\"after\":$first}" "$S/tail2" || fail "Last-Event-ID not resumed from: $(head -c 200 "$S/tail2")"
sed -n "s/^id: //p" "$S/tail2" | sed -n 1p | grep -qx "$(echo "$seqs" | sed -n 2p)" \
  || fail "the resumed tail does not go on with the next event"
expect 400 "not a filter" "${U}api/tail?bogus=1"
expect 400 "kind" "${U}api/tail?kind=zz"
expect 400 "category" "${U}api/tail?category=99"
expect 400 "after" "${U}api/tail?after=-5"

# verify from the page: started by POST (with the page's header), then its progress and result
expect 403 'X-Batpak' -X POST "${U}api/verify"
expect 202 '"state":"running"' -X POST -H 'X-Batpak: 1' "${U}api/verify"
for _ in $(seq 100); do get "${U}api/verify" >/dev/null; grep -q '"state":"done"' "$S/body" && break; sleep 0.1; done
has '"state":"done"' "verify's end"
has '"clean":true' "verify's result"
[ "$(field done_bytes)" = "$(field total_bytes)" ] && [ "$(field total_bytes)" -gt 0 ] \
  || fail "verify's progress at its end: $(cat "$S/body")"

# receipts: a signed one verifies against its key; changed, unsigned, or not JSON, it does not
expect 200 '"valid":true' -X POST -H 'X-Batpak: 1' --data-binary @"$S/signed.json" "${U}api/receipts"
has "\"key_id\":\"$KEY_ID\"" "the key that signed it"
sed 's/"entity":"acct:9"/"entity":"acct:8"/' "$S/signed.json" >"$S/forged.json"
expect 200 '"valid":false' -X POST -H 'X-Batpak: 1' --data-binary @"$S/forged.json" "${U}api/receipts"
expect 200 'not signed' -X POST -H 'X-Batpak: 1' --data-binary @"$S/unsigned.json" "${U}api/receipts"
printf '%s\nnot json\n' "$(cat "$S/signed.json")" >"$S/two.json"
expect 200 '"line":2,"valid":false' -X POST -H 'X-Batpak: 1' --data-binary @"$S/two.json" "${U}api/receipts"
has '"line":1,"valid":true' "the good line of two"
expect 400 'no receipt' -X POST -H 'X-Batpak: 1' --data-binary '   ' "${U}api/receipts"
head -c 70000 /dev/zero | tr '\0' 'x' >"$S/big"
expect 413 'over' -X POST -H 'X-Batpak: 1' --data-binary @"$S/big" "${U}api/receipts"
expect 405 'POST' "${U}api/receipts"

# bad requests: 4xx with a message
expect 404 '"error":"entity' "${U}api/stream?entity=nobody"
expect 400 '"error":"entity: missing' "${U}api/stream"
expect 400 'limit' "${U}api/entities?limit=abc"
expect 400 'limit' "${U}api/entities?limit=1000000"
expect 400 'limit' "${U}api/entities?limit=0"
expect 400 'after' "${U}api/stream?entity=acct:1&after=-1"
expect 404 'no such page' --path-as-is "${U}../../etc/passwd"
expect 404 'no such page' --path-as-is "${U}api/../api/store/.."
expect 404 'no such page' "${U}api/nothing"
expect 405 'read-only' -X POST -H 'X-Batpak: 1' -d 'x=1' "${U}api/store"
expect 405 'read-only' -X DELETE "${U}api/stream?entity=acct:1"
expect 405 'read-only' -X PUT "${U}api/verify"
expect 405 'read-only' -X OPTIONS "${U}api/store"
# another site's page: refused but for the page itself (a link there may open it); a body is
# not read before the headers are judged
expect 403 'another site' -H 'Sec-Fetch-Site: cross-site' "${U}api/store"
expect 403 'another site' -H 'Sec-Fetch-Site: same-site' "${U}api/tail"
expect 200 '<title>batpak</title>' -H 'Sec-Fetch-Site: cross-site' "${U}"
expect 200 '"events"' -H 'Sec-Fetch-Site: same-origin' "${U}api/store"
expect 403 'X-Batpak' -X POST --data-binary @"$S/signed.json" "${U}api/receipts"
grep -qi "access-control" "$S/body" && fail "a CORS header"
# verify started by several requests at once: one runs at a time (202, else 409), none lost
for i in 1 2 3 4 5 6 7 8; do
  curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'X-Batpak: 1' "${U}api/verify" >>"$S/posts" &
done
wait_posts() { for _ in $(seq 100); do [ "$(wc -l <"$S/posts")" -ge 8 ] && return; sleep 0.1; done; }
wait_posts
grep -qvx '202\|409' "$S/posts" && fail "verify POSTs at once: $(tr '\n' ' ' <"$S/posts")"
for _ in $(seq 100); do get "${U}api/verify" >/dev/null; grep -q '"state":"done"' "$S/body" && break; sleep 0.1; done
has '"clean":true' "verify after POSTs at once"
# at most 16 live tails: the 17th is told so
for i in $(seq 16); do curl -sN -m 20 -o /dev/null "${U}api/tail" & echo $! >>"$S/tails"; done
readers() { curl -s "${U}api/store" | grep -o '"readers":[0-9]*' | cut -d: -f2; }
for _ in $(seq 100); do [ "$(readers)" -ge 17 ] && break; sleep 0.1; done # (each has a handle)
[ "$(curl -s -m 2 -o "$S/body" -w '%{http_code}' "${U}api/tail" || true)" = 503 ] \
  || fail "a 17th tail: $(head -c 300 "$S/body")"
grep -q "live tails are open already" "$S/body" || fail "no 503 for a 17th tail: $(head -c 300 "$S/body")"
kill $(cat "$S/tails") 2>/dev/null || true
for _ in $(seq 50); do code=$(curl -s -m 1 -o /dev/null -w '%{http_code}' "${U}api/tail" || true); [ "$code" = 200 ] && break; sleep 0.2; done
[ "$code" = 200 ] || fail "the tails closed by their browsers were not given back: HTTP $code"
# bytes that are not UTF-8, and control characters, in names: a 4xx or an empty list, and the
# server goes on
for q in "api/stream?entity=%FF%FE" "api/stream?entity=a%0Ab" "api/tail?entity=%FF" "api/tail?scope=%FF"; do
  code=$(get "${U}$q")
  case $code in 4??) grep -q '"error"' "$S/body" || fail "$q: no message: $(cat "$S/body")" ;;
    *) fail "$q: HTTP $code: $(cat "$S/body")" ;; esac
done
expect 200 '"entities":\[\]' "${U}api/entities?prefix=%FF%FE"
expect 404 'no such page' "${U}api/%FF"
expect 200 '"events"' "${U}api/store"
# a name that is not loopback's (another site rebinding its name to 127.0.0.1)
expect 403 'localhost only' -H 'Host: evil.example:80' "${U}api/store"
expect 200 '"events"' -H "Host: localhost:1" "${U}api/store"
# nothing written: the store holds what the writer appended, and no more readers than ours
n=$(events)
[ "$n" -ge 5 ] || fail "events: $n"

# beyond loopback: only with --allow-remote, and only with the cookie of a one-time login URL
if "$B" --dir "$D" ui --listen 0.0.0.0:0 >/dev/null 2>"$S/err" </dev/null; then fail "0.0.0.0 accepted"; fi
grep -q -- "--allow-remote" "$S/err" || fail "no reason for 0.0.0.0: $(cat "$S/err")"
"$B" --dir "$D" ui --listen 0.0.0.0:0 --allow-remote >"$S/rurl" 2>"$S/rui.err" </dev/null &
RPID=$!
for _ in $(seq 50); do grep -q login "$S/rurl" 2>/dev/null && break; sleep 0.1; done
R=$(sed -n 's/.*"url":"http:\/\/0.0.0.0\([^"]*\)".*/http:\/\/127.0.0.1\1/p' "$S/rurl")
L=$(sed -n 's/.*"login":"http:\/\/0.0.0.0\([^"]*\)".*/http:\/\/127.0.0.1\1/p' "$S/rurl" | sed -n 1p)
[ -n "$R" ] && [ -n "$L" ] || { kill $RPID; fail "no url and login printed: $(cat "$S/rurl" "$S/rui.err")"; }
expect 401 'login URL' "${R}api/store"
expect 401 'login URL' -X POST -H 'X-Batpak: 1' --data-binary @"$S/big" "${R}api/receipts"
expect 401 'login URL' -b 'batpak_ui=0000000000000000000000000000000000000000000000000000000000000000' "${R}api/store"
expect 403 'login link' "${R}login?token=nottoken"
code=$(curl -s -c "$S/jar" -D "$S/lhead" -o /dev/null -w '%{http_code}' "$L")
[ "$code" = 303 ] || { kill $RPID; fail "the login URL: HTTP $code"; }
grep -q batpak_ui "$S/jar" || { kill $RPID; fail "the login set no cookie"; }
expect 200 '"events"' -b "$S/jar" "${R}api/store"
grep -q '#HttpOnly_' "$S/jar" || fail "the session cookie is not HttpOnly: $(cat "$S/jar")"
grep -qi '^set-cookie: batpak_ui=[0-9a-f]\{64\}; HttpOnly; SameSite=Strict; Path=/' "$S/lhead" \
  || fail "the session cookie's attributes: $(cat "$S/lhead")"
grep -qi '^location: /' "$S/lhead" || fail "the login does not send the browser on: $(cat "$S/lhead")"
expect 403 'X-Batpak' -b "$S/jar" -X POST "${R}api/verify"
expect 405 'read-only' -b "$S/jar" -X DELETE "${R}api/store"
expect 403 'used already' "$L"
[ "$(grep -c login "$S/rurl")" = 2 ] || { kill $RPID; fail "no new login URL after the first was used"; }
token=${L##*token=}
kill $RPID
wait $RPID || fail "the remote ui did not stop cleanly on SIGTERM (exit $?): $(cat "$S/rui.err")"
grep -q "$token" "$S/rui.err" && fail "the token was written to stderr"
# a port in use, a store that is not there: said at once
port=${U##*:}; port=${port%/}
if "$B" --dir "$D" ui --listen "127.0.0.1:$port" >/dev/null 2>"$S/err" </dev/null; then fail "a port in use accepted"; fi
grep -q "cannot listen on 127.0.0.1:$port" "$S/err" || fail "no reason for a port in use: $(cat "$S/err")"
if "$B" --dir "$S/nothing" ui --listen 127.0.0.1:0 >/dev/null 2>"$S/err" </dev/null; then fail "a missing store served"; fi
grep -q "nothing" "$S/err" || fail "no reason for a missing store: $(cat "$S/err")"
if "$B" --dir "$D" ui --listen nonsense >/dev/null 2>"$S/err" </dev/null; then fail "nonsense accepted"; fi
grep -q "HOST:PORT" "$S/err" || fail "no reason for nonsense: $(cat "$S/err")"
# SIGTERM stops it cleanly (exit 0), a live tail connected meanwhile, with nothing a sanitizer
# found (the ASan and TSan builds run this test too)
curl -sN -m 30 -o /dev/null "${U}api/tail" &
TAILPID=$!
sleep 0.3
kill "$UPID"
wait "$UPID" || fail "batpak ui did not stop cleanly on SIGTERM (exit $?): $(cat "$S/ui.err")"
UPID=
wait "$TAILPID" || true

# nothing the page does writes to the store: every endpoint, verify and a tail, with no writer
# running, and every file of the store the same bytes after
kill "$WPID"; wait "$WPID" || fail "the live writer did not close cleanly"
WPID=
sums() { (cd "$D" && find . -type f | sort | xargs sha256sum); }
sums >"$S/before"
"$B" --dir "$D" ui --listen 127.0.0.1:0 >"$S/url2" 2>"$S/ui2.err" </dev/null &
UPID=$!
for _ in $(seq 50); do [ -s "$S/url2" ] && break; sleep 0.1; done
U=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$S/url2")
for p in "" api/store "api/entities?limit=1000" "api/stream?entity=acct:1" api/checkpoints api/kinds; do
  [ "$(get "${U}$p")" = 200 ] || fail "$p with no writer: $(cat "$S/body")"
done
expect 202 'running' -X POST -H 'X-Batpak: 1' "${U}api/verify"
for _ in $(seq 100); do get "${U}api/verify" >/dev/null; grep -q '"state":"done"' "$S/body" && break; sleep 0.1; done
has '"clean":true' "verify with no writer"
expect 200 '"valid":true' -X POST -H 'X-Batpak: 1' --data-binary @"$S/signed.json" "${U}api/receipts"
timeout 1 curl -sN "${U}api/tail?after=0" >"$S/tail3" || true
grep -q '^id: 1$' "$S/tail3" || fail "a tail from after=0 with no writer: $(head -c 300 "$S/tail3")"
kill "$UPID"; wait "$UPID" || fail "batpak ui (no writer) did not stop cleanly: $(cat "$S/ui2.err")"
UPID=
sums >"$S/after"
cmp -s "$S/before" "$S/after" || fail "the store's files changed: $(diff "$S/before" "$S/after")"
for f in "$S/ui.err" "$S/rui.err" "$S/ui2.err"; do
  grep -q "Sanitizer\|runtime error" "$f" && fail "a sanitizer report in $f: $(cat "$f")"
done
grep -q "batpak ui: http:" "$S/ui.err" && fail "libmicrohttpd complained: $(cat "$S/ui.err")"
echo "ui_test: every endpoint, the tail, verify, receipts, login and bad request answered as it should, beside a live writer"
