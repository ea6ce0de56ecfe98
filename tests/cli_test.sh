#!/usr/bin/env bash
# End-to-end test of the `batpak` command-line tool (doc/batpak.1).
#   usage: cli_test.sh PATH/TO/batpak SCRATCH_DIR
# Exercises every command and every exit code; fails (exit 1) on any mismatch.
# Plain bash + grep/sed; flock(1), dd and date from util-linux/coreutils.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/batpak SCRATCH_DIR" >&2
    exit 1
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SCRATCH=$2
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH" || exit 1
SCRATCH=$(cd "$SCRATCH" && pwd)
cd "$SCRATCH" || exit 1
unset BATPAK_DIR

OUT=$SCRATCH/stdout
ERR=$SCRATCH/stderr
S=$SCRATCH/store # the main store of this test
failures=0
code=0
what=""

fail() {
    echo "FAIL: $what: $*" >&2
    echo "  stdout: $(head -c 600 "$OUT")" >&2
    echo "  stderr: $(head -c 600 "$ERR")" >&2
    failures=$((failures + 1))
}

# run ARGS...: run batpak with stdin from /dev/null; sets $code, $OUT, $ERR.
run() {
    what="batpak $*"
    "$BIN" "$@" >"$OUT" 2>"$ERR" </dev/null
    code=$?
}

# run_stdin FILE ARGS...: as run, with stdin from FILE.
run_stdin() {
    local input=$1
    shift
    what="batpak $* < $(basename "$input")"
    "$BIN" "$@" >"$OUT" 2>"$ERR" <"$input"
    code=$?
}

# The exit code must be $1; an error exit prints exactly one line "batpak: ..." on
# stderr, a success prints nothing there.
check_exit() {
    if [ "$code" -ne "$1" ]; then
        fail "exit $code, want $1"
        return
    fi
    local lines
    lines=$(grep -c '' "$ERR")
    if [ "$1" -eq 0 ]; then
        [ "$lines" -eq 0 ] || fail "stderr not empty on success"
    else
        [ "$lines" -eq 1 ] || fail "$lines stderr lines, want exactly 1"
        grep -q '^batpak: ' "$ERR" || fail "stderr line does not start with 'batpak: '"
    fi
}

# expect CODE ARGS...: run and check the exit code.
expect() {
    local want=$1
    shift
    run "$@"
    check_exit "$want"
}

expect_stdin() {
    local want=$1 input=$2
    shift 2
    run_stdin "$input" "$@"
    check_exit "$want"
}

out_has() { grep -qE -- "$1" "$OUT" || fail "stdout lacks /$1/"; }
out_lacks() { ! grep -qE -- "$1" "$OUT" || fail "stdout has /$1/"; }
err_has() { grep -qF -- "$1" "$ERR" || fail "stderr lacks '$1'"; }
out_lines() {
    local n
    n=$(grep -c '' "$OUT")
    [ "$n" -eq "$1" ] || fail "$n stdout lines, want $1"
}
# field NAME: the value of "NAME" in the first line of stdout (string or number).
field() { head -n 1 "$OUT" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
# events DIR: number of events in the store (every event, system ones too).
events() { "$BIN" --dir "$1" query 2>/dev/null | grep -c ''; }

HEX64='[0-9a-f]{64}'
UUID='[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}'
RECEIPT="^\{\"type\":\"append_receipt\",\"version\":1,\"store_id\":\"[0-9a-f-]{36}\",\"event_id\":\"$UUID\",\"entity\":\"[^\"]+\",\"scope\":\"[^\"]+\",\"kind\":[0-9]+,\"global_seq\":[0-9]+,\"clock\":[0-9]+,\"hlc\":[0-9]+,\"prev_hash\":\"$HEX64\",\"event_hash\":\"$HEX64\",\"durability\":\"(sync|every|none)\",\"replayed\":(true|false),\"signed\":false\}$"

# ------------------------------------------------------------ help, usage
expect 0 --help
out_has '^usage: batpak \[--dir DIR\] COMMAND'
out_has 'batpak append ENTITY SCOPE KIND'
expect 0 help
out_has '^usage: batpak'
expect 0 help query
out_has '^usage: batpak \[--dir DIR\] query'
out_has -- '--entity-prefix'
expect 0 append --help
out_has '^usage: batpak \[--dir DIR\] append'
expect 0 --version
out_has '^batpak [0-9]+\.[0-9]+\.[0-9]+'
expect 0 version
expect 1
err_has "missing command"
expect 1 frobnicate
err_has "batpak: frobnicate: unknown command"
expect 1 --frobnicate
expect 1 --dir
expect 1 help frobnicate
expect 1 --dir "" init
err_has "empty"

# -------------------------------------------------- no store: exit 2
expect 2 --dir "$SCRATCH/none" query
err_has "batpak: query: "
expect 2 --dir "$SCRATCH/none" get 01020304-0506-7708-890a-0b0c0d0e0f10
expect 2 --dir "$SCRATCH/none" stream acct:1
expect 2 --dir "$SCRATCH/none" tail
expect 2 --dir "$SCRATCH/none" verify
expect 2 --dir "$SCRATCH/none" stats
expect 2 --dir "$SCRATCH/none" dump
[ ! -e "$SCRATCH/none" ] || { what="read commands"; fail "a read command created the store"; }

# ------------------------------------------------------------------ init
# append and compact do not create a store: a typo in --dir must not make a new one (exit 2,
# nothing created, even when the append would be refused anyway)
expect 2 --dir "$SCRATCH/typo" append a b 0x1001 '{}' --expect-clock 5
err_has 'batpak init creates one'
[ ! -e "$SCRATCH/typo" ] || fail "append to a missing store created $SCRATCH/typo"
expect 2 --dir "$SCRATCH/typo" compact --keep-last 1
[ ! -e "$SCRATCH/typo" ] || fail "compact of a missing store created $SCRATCH/typo"
expect 0 --dir "$S" init
out_has "^\{\"dir\":\"$S\",\"store_uuid\":\"[0-9a-f-]{36}\",\"created\":true,\"sealed\":false\}$"
uuid=$(field store_uuid)
expect 0 --dir="$S" init
out_has '"created":false'
[ "$(field store_uuid)" = "$uuid" ] || fail "store_uuid changed on the second init"
expect 0 init --dir "$SCRATCH/optdir" # --dir after the command works too
[ -f "$SCRATCH/optdir/STORE" ] || fail "init --dir DIR did not create DIR/STORE"
BATPAK_DIR="$SCRATCH/envdir" "$BIN" init >"$OUT" 2>"$ERR"
code=$?
what="BATPAK_DIR=envdir batpak init"
check_exit 0
[ -f "$SCRATCH/envdir/STORE" ] || fail "\$BATPAK_DIR was not used"
mkdir -p "$SCRATCH/cwd" && (cd "$SCRATCH/cwd" && "$BIN" init >/dev/null 2>&1)
what="batpak init (default dir)"
[ -f "$SCRATCH/cwd/batpak-data/STORE" ] || fail "default ./batpak-data was not used"
echo "not a directory" >"$SCRATCH/afile"
expect 2 --dir "$SCRATCH/afile" init # a file is no store
err_has 'is a file, not a directory'
expect 2 --dir "$SCRATCH/afile" stats
err_has 'is a file, not a directory'
expect 2 --dir "$SCRATCH/afile/sub" init # a parent that is a file

# ---------------------------------------------------------------- append
expect 0 --dir "$S" append acct:1 bank 0x1001 '{"amount":100}'
out_has "$RECEIPT"
out_has '"clock":1,'
out_has '"durability":"sync","replayed":false'
id1=$(field event_id)
seq1=$(field global_seq)
hlc1=$(field hlc)
expect 0 --dir "$S" append acct:1 bank 4098 '{"amount":-30,"memo":"fee","tags":["a",1,2.5,true,null]}'
out_has '"clock":2,'
printf '{"amount": 7}\n' >"$SCRATCH/payload.json"
expect_stdin 0 "$SCRATCH/payload.json" --dir "$S" append acct:1 bank 0x1002
out_has '"clock":3,'

# CAS: the right expectation passes, a stale one is a conflict (3) and writes nothing
expect 0 --dir "$S" append acct:1 bank 0x1002 '{"amount":1}' --expect-clock 3
out_has '"clock":4,'
expect 3 --dir "$S" append acct:1 bank 0x1002 '{"amount":1}' --expect-clock 3
err_has "batpak: append: "
expect 0 --dir "$S" stream acct:1
out_lines 4
expect 0 --dir "$S" append acct:2 bank 0x1001 '{}' --expect-clock 0
out_has '"clock":1,'

# idempotency: the retry returns the original receipt, replayed
expect 0 --dir "$S" append acct:2 bank 0x1002 '{"amount":5}' --idempotency-key pay-1
out_has '"replayed":false'
idem_id=$(field event_id)
expect 0 --dir "$S" append acct:2 bank 0x1002 '{"amount":5}' --idempotency-key pay-1
out_has '"replayed":true'
[ "$(field event_id)" = "$idem_id" ] || fail "a replay returned another event id"
expect 3 --dir "$S" append acct:3 bank 0x1002 '{}' --idempotency-key pay-1 # key of another entity

# --no-sync: the receipt says it is not durable yet
expect 0 --dir "$S" append acct:2 bank 0x1002 '{"amount":2}' --no-sync
out_has '"durability":"none"'

# invalid input: exit 1, nothing written (not even an open event)
before=$(events "$S")
expect 1 --dir "$S" append acct:1 bank 0x10000 '{}'
err_has "kind"
expect 1 --dir "$S" append acct:1 bank 65536 '{}'
expect 1 --dir "$S" append acct:1 bank 12abc '{}'
expect 1 --dir "$S" append acct:1 bank 0x '{}'
expect 1 --dir "$S" append acct:1 bank '' '{}'
expect 1 --dir "$S" append acct:1 bank ' 1' '{}'
expect 1 --dir "$S" append acct:1 bank 0x0001 '{}'
err_has "reserved"
expect 1 --dir "$S" append acct:1 bank 0xD001 '{}'
expect 1 --dir "$S" append '' bank 0x1001 '{}'
err_has "entity"
expect 1 --dir "$S" append acct:1 '' 0x1001 '{}'
err_has "scope"
expect 1 --dir "$S" append "$(printf 'e%.0s' {1..256})" bank 0x1001 '{}'
expect 1 --dir "$S" append batpak:mine bank 0x1001 '{}'
err_has "reserved"
expect 1 --dir "$S" append acct:1 bank 0x1001 '{"amount":'
err_has "invalid JSON"
expect 1 --dir "$S" append acct:1 bank 0x1001 '{"a":1,"a":2}'
expect 1 --dir "$S" append acct:1 bank 0x1001 '{"a":1} trailing'
expect 1 --dir "$S" append acct:1 bank 0x1001 ''
expect 1 --dir "$S" append acct:1 bank 0x1001 '99999999999999999999999'
expect 1 --dir "$S" append acct:1 bank 0x1001 # empty stdin
expect 1 --dir "$S" append acct:1 bank
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' extra
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --bogus
err_has "--bogus"
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --expect-clock abc
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --expect-clock
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --idempotency-key ''
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --idempotency-key "$(printf 'k%.0s' {1..256})"
expect 1 --dir "$S" append acct:1 bank 0x1001 '{}' --no-sync=yes
{
    printf '"'
    head -c 16777300 /dev/zero | tr '\0' a
    printf '"'
} >"$SCRATCH/big.json"
expect_stdin 1 "$SCRATCH/big.json" --dir "$S" append acct:1 bank 0x1001
err_has "limit"
what="invalid appends"
[ "$(events "$S")" -eq "$before" ] || fail "invalid input wrote events ($before -> $(events "$S"))"

# ----------------------------------------------------------------- batch
cat >"$SCRATCH/batch.ndjson" <<'EOF'
{"entity":"order:1","scope":"shop","kind":"0x2001","payload":{"total":5},"idempotency_key":"b-1"}

{"entity":"order:2","scope":"shop","kind":8193,"payload":[1,2],"expect_clock":0,"idempotency_key":"b-2"}
{"entity":"order:1","scope":"shop","kind":"0x2002","payload":null,"expect_clock":1,"idempotency_key":"b-3"}
EOF
expect 0 --dir "$S" append --batch "$SCRATCH/batch.ndjson"
out_lines 3
grep -qvE "$RECEIPT" "$OUT" && fail "a batch output line is not a receipt"
out_has '"replayed":false'
expect 0 --dir "$S" append --batch "$SCRATCH/batch.ndjson" # every key committed: replayed
out_lines 3
out_lacks '"replayed":false'
expect 0 --dir "$S" stream order:1
out_lines 2
printf '%s\n' '{"entity":"order:3","scope":"shop","kind":"0x2001","payload":{}}' >"$SCRATCH/one.ndjson"
expect_stdin 0 "$SCRATCH/one.ndjson" --dir "$S" append --batch -
out_lines 1

before=$(events "$S")
bad_batch() { # bad_batch LINE2 MESSAGE: line 2 is bad; exit 1 names it, nothing written
    printf '%s\n%s\n' '{"entity":"order:9","scope":"shop","kind":"0x2001","payload":{}}' "$1" >"$SCRATCH/bad.ndjson"
    expect 1 --dir "$S" append --batch "$SCRATCH/bad.ndjson"
    err_has "line 2"
    err_has "$2"
}
bad_batch 'garbage' "invalid JSON"
bad_batch '[1,2]' "not a JSON object"
bad_batch '"text"' "not a JSON object"
bad_batch '{"entity":"order:9","scope":"shop","kind":"0x2001"}' '"payload"'
bad_batch '{"entity":"order:9","kind":"0x2001","payload":1}' '"scope"'
bad_batch '{"entity":5,"scope":"s","kind":"0x2001","payload":1}' '"entity"'
bad_batch '{"entity":"order:9","scope":"shop","kind":"nope","payload":1}' '"kind"'
bad_batch '{"entity":"order:9","scope":"shop","kind":70000,"payload":1}' '"kind"'
bad_batch '{"entity":"order:9","scope":"shop","kind":1,"payload":1}' "reserved"
bad_batch '{"entity":"batpak:x","scope":"shop","kind":4097,"payload":1}' "reserved"
bad_batch '{"entity":"order:9","scope":"shop","kind":4097,"payload":1,"extra":1}' '"extra"'
bad_batch '{"entity":"order:9","scope":"shop","kind":4097,"payload":1,"expect_clock":-1}' "expect_clock"
bad_batch '{"entity":"order:9","scope":"shop","kind":4097,"payload":1,"idempotency_key":7}' "idempotency_key"
printf '%s\n' '{"entity":"a:1","scope":"s","kind":4097,"payload":1,"idempotency_key":"dup"}' \
    '{"entity":"a:2","scope":"s","kind":4097,"payload":1,"idempotency_key":"dup"}' >"$SCRATCH/bad.ndjson"
expect 1 --dir "$S" append --batch "$SCRATCH/bad.ndjson"
err_has "twice"
: >"$SCRATCH/empty.ndjson"
expect 1 --dir "$S" append --batch "$SCRATCH/empty.ndjson"
expect 2 --dir "$S" append --batch "$SCRATCH/no-such-file.ndjson" # not found
expect 2 --dir "$S" import "$SCRATCH/no-such-file.ndjson"
expect 1 --dir "$S" append --batch "$SCRATCH/one.ndjson" acct:1
expect 1 --dir "$S" append --batch "$SCRATCH/one.ndjson" --no-sync
expect 1 --dir "$S" append --batch
what="invalid batches"
[ "$(events "$S")" -eq "$before" ] || fail "an invalid batch wrote events"
# a CAS conflict on the second item: exit 3 and the first item is not written either
printf '%s\n' '{"entity":"order:7","scope":"shop","kind":4097,"payload":1}' \
    '{"entity":"order:1","scope":"shop","kind":4097,"payload":1,"expect_clock":0}' >"$SCRATCH/cas.ndjson"
expect 3 --dir "$S" append --batch "$SCRATCH/cas.ndjson"
err_has "line 2: entity 'order:1': expected clock 0" # lines count from 1, CAS errors too
expect 2 --dir "$S" stream order:7
printf '\n%s\n\n%s\n' '{"entity":"order:7","scope":"shop","kind":4097,"payload":1}' \
    '{"entity":"order:1","scope":"shop","kind":4097,"payload":1,"expect_clock":0}' >"$SCRATCH/cas.ndjson"
expect 3 --dir "$S" append --batch "$SCRATCH/cas.ndjson"
err_has "line 4: entity 'order:1'" # blank lines count
printf '%s\n' '{"entity":"order:7","scope":"shop","kind":4097,"payload":1,"idempotency_key":"d"}' \
    '{"entity":"order:8","scope":"shop","kind":4097,"payload":1,"idempotency_key":"d"}' >"$SCRATCH/dup.ndjson"
expect 1 --dir "$S" append --batch "$SCRATCH/dup.ndjson"
err_has "lines 1 and 2: idempotency key 'd' appears twice"
# a name that is not UTF-8 is escaped in the message, never echoed raw
expect 1 --dir "$S" append "$(printf 'acct\377\376')" bank 0x1001 1
err_has "entity 'acct\xff\xfe': not valid UTF-8"
expect 1 --dir "$S" stream "$(printf 'x\355\240\200y')" # a surrogate
err_has "'x\xed\xa0\x80y'"

# ------------------------------------------------------------------- get
EVENT="^\{\"event_id\":\"$id1\",\"entity\":\"acct:1\",\"scope\":\"bank\",\"kind\":4097,\"global_seq\":$seq1,\"clock\":1,\"hlc\":$hlc1,\"prev_hash\":\"0{64}\",\"event_hash\":\"$HEX64\",\"correlation_id\":\"$id1\",\"causation_id\":null,\"payload\":\{\"amount\":100\}\}$"
expect 0 --dir "$S" get "$id1"
out_lines 1
out_has "$EVENT"
expect 0 --dir "$S" get "$(echo "$id1" | tr -d -)" # dashes are optional
expect 2 --dir "$S" get 01020304-0506-7708-890a-0b0c0d0e0f10
err_has "batpak: get: "
expect 1 --dir "$S" get not-an-id
expect 1 --dir "$S" get
expect 1 --dir "$S" get "$id1" "$id1"

# ---------------------------------------------------------------- stream
expect 0 --dir "$S" stream acct:1
out_lines 4
[ "$(sed -n 's/.*"clock":\([0-9]*\),.*/\1/p' "$OUT" | tr '\n' ' ')" = "1 2 3 4 " ] || fail "clocks not 1 2 3 4"
out_has '"payload":\{"amount":-30,"memo":"fee","tags":\["a",1,2\.5,true,null\]\}'
out_has '"payload":\{"amount":7\}'
hash1=$(sed -n '1s/.*"event_hash":"\([0-9a-f]*\)".*/\1/p' "$OUT")
prev2=$(sed -n '2s/.*"prev_hash":"\([0-9a-f]*\)".*/\1/p' "$OUT")
[ -n "$hash1" ] && [ "$hash1" = "$prev2" ] || fail "prev_hash of clock 2 is not the hash of clock 1"
seq2=$(sed -n '2s/.*"global_seq":\([0-9]*\),.*/\1/p' "$OUT")
expect 0 --dir "$S" stream acct:1 --limit 2
out_lines 2
expect 0 --dir "$S" stream acct:1 --after "$seq2"
out_lines 2
out_has '^.*"clock":3,'
expect 2 --dir "$S" stream acct:none
err_has "no events"
expect 1 --dir "$S" stream ''
expect 1 --dir "$S" stream
expect 1 --dir "$S" stream acct:1 acct:2
expect 1 --dir "$S" stream acct:1 --limit x

# ----------------------------------------------------------------- query
expect 0 --dir "$S" query
total=$(grep -c '' "$OUT")
out_lacks 'batpak:lifecycle' # a short-lived command logs no open (README, batpak(1))
expect 0 --dir "$S" query --entity acct:1
out_lines 4
expect 0 --dir "$S" query --entity-prefix order:
out_lines 4
expect 0 --dir "$S" query --scope shop
out_lines 4
expect 0 --dir "$S" query --kind 0x1001
out_lines 2
expect 0 --dir "$S" query --kind 0x1001 --kind 0x2002
out_lines 3
# a single-valued option given twice is refused, naming it (not the last one kept)
expect 1 --dir "$S" query --entity acct:1 --entity acct:2
err_has '--entity: given twice'
expect 1 --dir "$S" query --limit 1 --limit=2
err_has '--limit: given twice'
expect 1 --dir "$S" append --idempotency-key a --idempotency-key b acct:1 bank 0x1001 1
err_has '--idempotency-key: given twice'
expect 1 --dir "$S" compact --keep-last 1 --keep-last 2
err_has '--keep-last: given twice'
expect 1 --dir "$S" --dir "$S" query
err_has '--dir: given twice'
expect 1 --dir "$S" query --dir="$S"
err_has '--dir: given twice'
expect 0 --dir "$S" query --category 2
out_lines 4
expect 0 --dir "$S" query --category 0
out_lines 0
expect 0 --dir "$S" query --from-seq "$seq1" --to-seq "$seq1"
out_lines 1
out_has "\"event_id\":\"$id1\""
expect 0 --dir "$S" query --after "$seq1" --entity acct:1
out_lines 3
expect 0 --dir "$S" query --limit 2
out_lines 2
expect 0 --dir "$S" query --limit 0
out_lines 0
expect 0 --dir "$S" query --entity acct:none
out_lines 0
# time filters on the HLC wall clock, as Unix ms and as RFC 3339
wall1=$((hlc1 >> 16))
expect 0 --dir "$S" query --entity acct:1 --since "$wall1" --until "$wall1"
out_has "\"event_id\":\"$id1\""
expect 0 --dir "$S" query --entity acct:1 --until $((wall1 - 1))
out_lines 0
rfc=$(date -u -d "@$((wall1 / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((wall1 % 1000)))Z
rfc_plus2=$(date -u -d "@$((wall1 / 1000 + 7200))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((wall1 % 1000)))+02:00
expect 0 --dir "$S" query --entity acct:1 --since "$rfc" --until "$rfc_plus2"
out_has "\"event_id\":\"$id1\""
expect 0 --dir "$S" query --until 2001-01-01T00:00:00Z
out_lines 0
expect 0 --dir "$S" query --since 2001-01-01
[ "$(grep -c '' "$OUT")" -eq "$total" ] || fail "--since 2001-01-01 did not list everything"
expect 1 --dir "$S" query --since yesterday
expect 1 --dir "$S" query --since 2026-02-30T00:00:00Z
expect 1 --dir "$S" query --until 2026-01-02T03:04:05
expect 1 --dir "$S" query --kind xyz
expect 1 --dir "$S" query --kind 0x10000
expect 1 --dir "$S" query --category 16
expect 1 --dir "$S" query --from-seq -1
expect 1 --dir "$S" query --limit
expect 1 --dir "$S" query --after x
expect 1 --dir "$S" query --entity ''
expect 1 --dir "$S" query positional
many_kinds=()
for i in $(seq 1 65); do many_kinds+=(--kind "$i"); done
expect 1 --dir "$S" query "${many_kinds[@]}"
err_has "64"

# ------------------------------------------------------------------ tail
for i in $(seq 1 12); do "$BIN" --dir "$S" append feed:1 news 0x3001 "{\"n\":$i}" >/dev/null 2>&1; done
expect 0 --dir "$S" tail
out_lines 10
tail -n 1 "$OUT" | grep -q '"payload":{"n":12}' || fail "tail: last line is not the newest event"
expect 0 --dir "$S" tail --entity feed:1 --limit 3
out_lines 3
head -n 1 "$OUT" | grep -q '"payload":{"n":10}' || fail "tail --limit 3: oldest line is not n=10"
expect 0 --dir "$S" tail --entity acct:none
out_lines 0
expect 1 --dir "$S" tail --interval 1
expect 1 --dir "$S" tail positional
# tail -f prints events appended after it started
what="tail -f"
"$BIN" --dir "$S" tail -f --entity feed:2 --interval 50 >"$SCRATCH/follow.out" 2>"$SCRATCH/follow.err" &
follower=$!
sleep 0.5
for i in 1 2 3; do
    for attempt in 1 2 3 4 5; do # the follower holds the lock for a moment when it reads
        "$BIN" --dir "$S" append feed:2 news 0x3001 "{\"f\":$i}" >/dev/null 2>&1 && break
        sleep 0.1
    done
    sleep 0.3
done
for wait_round in $(seq 1 30); do
    [ "$(grep -c '' "$SCRATCH/follow.out")" -ge 3 ] && break
    sleep 0.1
done
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
[ "$(grep -c '"entity":"feed:2"' "$SCRATCH/follow.out")" -eq 3 ] || fail "tail -f saw $(grep -c '' "$SCRATCH/follow.out") events, want 3"
grep -q '"payload":{"f":3}' "$SCRATCH/follow.out" || fail "tail -f missed the last event"
[ ! -s "$SCRATCH/follow.err" ] || fail "tail -f wrote to stderr: $(cat "$SCRATCH/follow.err")"
# tail -f whose reader goes away while nothing new comes (`| head -1`): it stops at its next
# --interval, not at the next event (there is none here: the 10 s timeout would end it, 124)
what="tail -f into a closed pipe"
timeout 10 "$BIN" --dir "$S" tail -f --limit 1 --interval 50 2>"$SCRATCH/pipe.err" | head -n 1 >"$SCRATCH/pipe.out"
pipe_rc=${PIPESTATUS[0]}
[ "$pipe_rc" -eq 0 ] || fail "tail -f | head -1 on an idle store exited $pipe_rc (124: it never noticed)"
[ "$(grep -c '' "$SCRATCH/pipe.out")" -eq 1 ] || fail "tail -f | head -1 printed $(grep -c '' "$SCRATCH/pipe.out") lines"
[ ! -s "$SCRATCH/pipe.err" ] || fail "tail -f into a closed pipe wrote to stderr: $(cat "$SCRATCH/pipe.err")"

# tail -f across a compaction: the seqs have holes from then on, so the event count is not
# the last global_seq. Started before it, tail -f still prints the events appended after it;
# started after it, it prints no event twice.
retry() { # the follower holds the store's lock for a moment when it reads
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        "$BIN" "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
follow_until() { # FILE N: wait until FILE has N lines (at most 3 s)
    for wait_round in $(seq 1 30); do
        [ "$(grep -c '' "$1")" -ge "$2" ] && break
        sleep 0.1
    done
}
TC="$SCRATCH/tail-compacted"
"$BIN" --dir "$TC" init >/dev/null
for i in $(seq 1 20); do
    "$BIN" --dir "$TC" append "tc:$((i % 2))" news 0x3001 "{\"n\":$i}" >/dev/null 2>&1
done
what="tail -f before a compaction"
"$BIN" --dir "$TC" tail -f --entity-prefix tc: --limit 1 --interval 50 >"$SCRATCH/follow-c1.out" 2>"$SCRATCH/follow-c1.err" &
follower=$!
sleep 0.5
retry --dir "$TC" compact --keep-last 1 || fail "compact failed"
sleep 0.3
for i in 1 2 3; do
    retry --dir "$TC" append tc:new news 0x3001 "{\"after\":$i}" || fail "append failed"
    sleep 0.3
done
follow_until "$SCRATCH/follow-c1.out" 4
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
[ "$(grep -c '"entity":"tc:new"' "$SCRATCH/follow-c1.out")" -eq 3 ] ||
    fail "saw $(grep -c '"entity":"tc:new"' "$SCRATCH/follow-c1.out") of the 3 events appended after the compaction"
[ "$(grep -c '' "$SCRATCH/follow-c1.out")" -eq 4 ] || fail "printed $(grep -c '' "$SCRATCH/follow-c1.out") lines, want 4"
[ ! -s "$SCRATCH/follow-c1.err" ] || fail "wrote to stderr: $(cat "$SCRATCH/follow-c1.err")"
what="tail -f after a compaction"
"$BIN" --dir "$TC" tail -f --entity-prefix tc: --limit 100 --interval 50 >"$SCRATCH/follow-c2.out" 2>"$SCRATCH/follow-c2.err" &
follower=$!
sleep 0.5
for i in 4 5 6; do
    retry --dir "$TC" append tc:new news 0x3001 "{\"after\":$i}" || fail "append failed"
    sleep 0.3
done
follow_until "$SCRATCH/follow-c2.out" 8
sleep 0.3 # a poll that prints old events again would show here
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
dups=$(grep -o '"event_id":"[^"]*"' "$SCRATCH/follow-c2.out" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "printed $dups event(s) twice"
[ "$(grep -c '' "$SCRATCH/follow-c2.out")" -eq 8 ] || fail "printed $(grep -c '' "$SCRATCH/follow-c2.out") lines, want 8 (2 kept + 3 + 3 new)"
grep -q '"payload":{"after":6}' "$SCRATCH/follow-c2.out" || fail "missed the last event"
[ ! -s "$SCRATCH/follow-c2.err" ] || fail "wrote to stderr: $(cat "$SCRATCH/follow-c2.err")"

# ---------------------------------------------------------------- verify
expect 0 --dir "$S" verify
out_has '^\{"clean":true,"segments":[0-9]+,"frames":[0-9]+,"events":[0-9]+,"entities":[0-9]+,"problems":0,"first_problem":null\}$'
expect 1 --dir "$S" verify extra

# ----------------------------------------------------------------- stats
expect 0 --dir "$S" stats
out_has '^events +[0-9]+'
out_has '^segments +[0-9]+'
out_has '^segment 000001 +[0-9]+ event\(s\), seq 1\.\.[0-9]+, [0-9]+ bytes'
expect 0 --dir "$S" stats --json
out_lines 1
out_has '^\{"dir":".*","store_uuid":"[0-9a-f-]{36}","events":[0-9]+,"entities":[0-9]+,"scopes":[0-9]+,"segments":[0-9]+,"bytes_on_disk":[0-9]+,'
out_has '"open":\{"created":false,"checkpoint_used":(true|false),'
out_has '"diagnostics":\{"published_seq":[0-9]+,"written_seq":[0-9]+,"synced_seq":[0-9]+,"unsynced_events":0,"submit_queued":0,"submit_capacity":1024,"failed_msg":null,"segments":\[\{"segno":1,"bytes":[0-9]+,"events":[0-9]+,"first_seq":1,'
n_events=$(field events)
[ "$n_events" -eq "$(events "$S")" ] || fail "stats events $n_events != query count"
expect 1 --dir "$S" stats --table

# ------------------------------------------------------------------ dump
expect 0 --dir "$S" dump
head -n 1 "$OUT" | grep -q '^{"type":"store","file":"STORE",' || fail "dump does not start with the STORE record"
out_has '^\{"type":"segment","file":"segments/000001\.fbat",'
out_has "^\\{\"type\":\"frame\",\"segment\":1,\"offset\":48,\"len\":[0-9]+,\"crc_ok\":true,\"event_id\":\"$UUID\""
[ "$(grep -c '"type":"frame"' "$OUT")" -eq "$n_events" ] || fail "dump frame count != event count"
tail -n 1 "$OUT" | grep -qE "^\{\"type\":\"summary\",\"segments\":[0-9]+,\"frames\":$n_events,\"problems\":0\}$" || fail "dump summary"
expect 0 --dir "$S" dump --payloads
out_has '"payload":\{"amount":100\}'
expect 1 --dir "$S" dump extra

# ------------------------------------------------------ crypto-shredding
SH="$SCRATCH/sealed"
expect 0 --dir "$SH" init --seal
out_has '"created":true,"sealed":true'
expect 0 --dir "$SH" append user:ada crm 0x1001 '{"email":"ada@example.org"}'
expect 0 --dir "$SH" append user:bob crm 0x1001 '{"email":"bob@example.org"}'
grep -rqF 'ada@example.org' "$SH/segments" && fail "a sealed payload is in plaintext on disk"
expect 0 --dir "$SH" stream user:ada
out_has '"payload":\{"email":"ada@example.org"\}'
expect 0 --dir "$SH" forget user:ada
out_has '^\{"entity":"user:ada","forgotten":true\}$'
expect 0 --dir "$SH" stream user:ada
out_has '"payload":null,"payload_forgotten":true'
out_lacks 'ada@example.org'
expect 0 --dir "$SH" stream user:bob
out_has 'bob@example.org'
expect 0 --dir "$SH" verify
expect 2 --dir "$SH" forget user:ada # forgotten already
err_has 'no data key'
expect 1 --dir "$SH" forget
expect 0 --dir "$SH" init
out_has '"created":false,"sealed":true'

# ------------------------------------------------------ compaction
CP="$SCRATCH/compacted"
expect 0 --dir "$CP" init
for i in 1 2 3 4 5 6; do
    expect 0 --dir "$CP" append "acct:$((i % 2))" ledger 0x1001 "{\"n\":$i}"
done
expect 0 --dir "$CP" tombstone acct:0 --scope ledger
out_has '"entity":"acct:0".*"clock":4'
[ "$(events "$CP")" -eq 7 ] || fail "init, 6 appends and a tombstone hold $(events "$CP") events, want 7"
tree_sum() { (cd "$1" && find . -type f ! -name LOCK -printf '%p %s\n' | sort && find . -type f ! -name LOCK -exec cat {} + | md5sum); }
before=$(tree_sum "$CP")
expect 0 --dir "$CP" compact --keep-last 2 --dry-run
out_has '"changed":false,"dry_run":true'
out_has '"events_removed":[1-9]'
[ "$(tree_sum "$CP")" = "$before" ] || fail "compact --dry-run changed the store's files"
expect 0 --dir "$CP" compact --keep-last 2
out_has '"changed":true'
out_has '"events_removed":[1-9]'
expect 0 --dir "$CP" stream acct:1
out_lines 2
out_has '"clock":2,.*"payload":\{"n":3\}'
expect 0 --dir "$CP" compact --tombstoned
expect 0 --dir "$CP" stream acct:0
out_lines 0
expect 0 --dir "$CP" append acct:0 ledger 0x1001 '{"n":7}'
out_has '"clock":5'
expect 0 --dir "$CP" verify
out_has '"clean":true'
expect 0 --dir "$CP" snapshot "$SCRATCH/compacted-copy"
expect 0 --dir "$SCRATCH/compacted-copy" verify
expect 0 --dir "$SCRATCH/compacted-copy" stream acct:0
out_lines 1
expect 0 --dir "$CP" compact --max-age 3650d
out_has '"events_removed":0'
expect 1 --dir "$CP" compact --max-age 5x
err_has 'not a duration'
expect 1 --dir "$CP" compact --keep-last 0
expect 1 --dir "$CP" compact --keep-last abc
expect 1 --dir "$CP" tombstone acct:1
err_has 'needs --scope'
expect 1 --dir "$CP" tombstone batpak:x --scope ledger
expect 1 --dir "$CP" compact extra

# a compacted store's export restores byte for byte (issue 23, point 5): 40 appends over 4
# entities, compact --keep-last 2, export, import into a new directory, export again
CX="$SCRATCH/cx"
"${BATPAK_REAL_BIN:-$BIN}" --dir "$CX" init >/dev/null
# (the appends are setup: under cli_valgrind they run without valgrind)
for i in $(seq 1 40); do
    "${BATPAK_REAL_BIN:-$BIN}" --dir "$CX" append "e:$((i % 4))" ledger 0x1001 "{\"i\":$i}" \
        >/dev/null || fail "append $i to $CX"
done
expect 0 --dir "$CX" compact --keep-last 2
out_has '"events_removed":[1-9]'
expect 0 --dir "$CX" export
cp "$OUT" "$SCRATCH/cx.ndjson"
head -n 1 "$SCRATCH/cx.ndjson" | grep -Eq '^\{"format":"batpak-anchors-v1","upto":[0-9]+,"anchors":\[\{"entity":' ||
    fail "the export of a compacted store does not start with its anchors"
[ "$(grep -c '' "$SCRATCH/cx.ndjson")" -eq $(($(events "$CX") + 1)) ] ||
    fail "compacted export: the anchors line and one line per event"
expect 0 --dir "$SCRATCH/cx-restored" import "$SCRATCH/cx.ndjson"
out_has '"skipped":0'
expect 0 --dir "$SCRATCH/cx-restored" export
cmp -s "$OUT" "$SCRATCH/cx.ndjson" || fail "compacted: export -> import -> export is not byte-identical"
expect 0 --dir "$SCRATCH/cx-restored" verify
out_has '"clean":true'
expect_stdin 0 "$SCRATCH/cx.ndjson" --dir "$SCRATCH/cx-restored" import - # again: all held
out_has '"imported":0,"skipped":[1-9]'
expect 0 --dir "$SCRATCH/cx-restored" append e:1 ledger 0x1001 '{"after":1}'
out_has '"clock":11'
expect 0 --dir "$SCRATCH/cx-restored" verify
"$BIN" --dir "$SCRATCH/cx-nonempty" init >/dev/null
expect 0 --dir "$SCRATCH/cx-nonempty" append mine:1 x 0x1001 '{}'
expect 3 --dir "$SCRATCH/cx-nonempty" import "$SCRATCH/cx.ndjson" # not empty
err_has 'imports only into an empty store'
sed '1s/"hash":"./"hash":"0/' "$SCRATCH/cx.ndjson" >"$SCRATCH/cx-tampered.ndjson"
cmp -s "$SCRATCH/cx-tampered.ndjson" "$SCRATCH/cx.ndjson" && sed -i '1s/"hash":"./"hash":"1/' "$SCRATCH/cx-tampered.ndjson"
expect 3 --dir "$SCRATCH/cx-tampered" import "$SCRATCH/cx-tampered.ndjson"
err_has 'prev_hash is not the hash of its previous event'

# ------------------------------------------------------ snapshot, ancestors
expect 0 --dir "$S" snapshot "$SCRATCH/backup"
out_lines 1
out_has '^\{"dest":".*backup","global_seq":[0-9]+,"segments":[0-9]+,"bytes":[0-9]+,"duration_us":[0-9]+\}$'
snap_seq=$(field global_seq)
[ "$snap_seq" -eq "$(events "$S")" ] || fail "snapshot global_seq $snap_seq != events in the store"
expect 0 --dir "$SCRATCH/backup" verify
[ "$(events "$SCRATCH/backup")" -eq "$snap_seq" ] || fail "the copy holds another number of events"
expect 1 --dir "$S" snapshot "$SCRATCH/backup" # exists: never overwritten
grep -q 'snapshot: snapshot:' "$ERR" && fail "the command's name is said twice: $(cat "$ERR")"
err_has 'exists'
expect 1 --dir "$S" snapshot
expect 1 --dir "$S" snapshot "$SCRATCH/b1" "$SCRATCH/b2"
expect 2 --dir "$SCRATCH/none" snapshot "$SCRATCH/b3"
ls -d "$SCRATCH"/backup.partial-* >/dev/null 2>&1 && fail "a partial snapshot was left"
expect 0 --dir "$S" append lineage:1 audit 0x1001 '{"n":1}'
expect 0 --dir "$S" append lineage:1 audit 0x1001 '{"n":2}'
expect 0 --dir "$S" append lineage:1 audit 0x1001 '{"n":3}'
lin3=$(field event_id)
expect 0 --dir "$S" ancestors "$lin3"
out_lines 2
head -n 1 "$OUT" | grep -qE '"clock":2,.*"payload":\{"n":2\},"depth":1\}$' || fail "first ancestor is not clock 2"
tail -n 1 "$OUT" | grep -qE '"clock":1,.*"depth":2\}$' || fail "second ancestor is not clock 1"
expect 0 --dir "$S" ancestors "$lin3" --limit 1
out_lines 1
expect 0 --dir "$S" ancestors "$lin3" --limit 0 # at most 0, as query --limit 0
out_lines 0
expect 0 --dir "$S" ancestors "$lin3" --causation
out_lines 0
expect 2 --dir "$S" ancestors 01020304-0506-7708-890a-0b0c0d0e0f10
expect 1 --dir "$S" ancestors not-an-id
expect 1 --dir "$S" ancestors
expect 1 --dir "$S" ancestors "$lin3" --limit x

# --------------------------------------------------------- export, import
expect 0 --dir "$S" export
cp "$OUT" "$SCRATCH/export.ndjson"
[ "$(grep -c '' "$OUT")" -eq "$(events "$S")" ] || fail "export: one line per event"
out_has '^\{"global_seq":1,"event_id":"'"$UUID"'","entity":"[^"]+","scope":"[^"]+","kind":[0-9]+,"clock":1,"hlc":[0-9]+,"flags":[0-9]+,"correlation_id":"'"$UUID"'","causation_id":null,"idempotency_key":(null|"[^"]*"),"batch":(null|\{[^}]*\}),"prev_hash":"0{64}","event_hash":"'"$HEX64"'","payload":"[A-Za-z0-9+/=]*"\}$'
expect 0 --dir "$SCRATCH/imported" import "$SCRATCH/export.ndjson"
out_has '^\{"lines":[0-9]+,"imported":[0-9]+,"skipped":0\}$'
expect 0 --dir "$SCRATCH/imported" export
cmp -s "$OUT" "$SCRATCH/export.ndjson" || fail "export -> import -> export is not byte-identical"
expect 0 --dir "$SCRATCH/imported" verify
expect_stdin 0 "$SCRATCH/export.ndjson" --dir "$SCRATCH/imported" import -
out_has '"imported":0,"skipped":[1-9]'
expect 0 --dir "$S" export --after 3
out_has '^\{"global_seq":4,'
# a global_seq is 64-bit: --after takes any (nothing is past this one)
expect 0 --dir "$S" export --after 4294967296
[ ! -s "$OUT" ] || fail "export --after 4294967296 printed events"
expect 1 --dir "$S" export --after 18446744073709551616
sed '2s/"hlc":/"hlc":1/' "$SCRATCH/export.ndjson" >"$SCRATCH/tampered.ndjson"
cmp -s "$SCRATCH/tampered.ndjson" "$SCRATCH/export.ndjson" && fail "the export was not altered"
expect 4 --dir "$SCRATCH/imported2" import "$SCRATCH/tampered.ndjson"
err_has 'line 2: event_hash does not match'
[ "$(events "$SCRATCH/imported2")" -eq 1 ] || fail "the line before the bad one was not imported"
echo '{"global_seq":1' >"$SCRATCH/bad.ndjson"
expect 1 --dir "$SCRATCH/imported3" import "$SCRATCH/bad.ndjson"
err_has 'line 1: not JSON'
expect 2 --dir "$SCRATCH/imported3" import "$SCRATCH/missing.ndjson"
expect 1 --dir "$SCRATCH/imported3" import
"$BIN" --dir "$SCRATCH/imported4" init >/dev/null
expect 0 --dir "$SCRATCH/imported4" append mine:1 x 0x1001 '{}'
expect 3 --dir "$SCRATCH/imported4" import "$SCRATCH/export.ndjson" # its own events first
err_has 'line 1: this store holds another event'
expect 1 --dir "$S" export extra

# ----------------------------------------------------- corruption: exit 4
cp -r "$S" "$SCRATCH/corrupt"
# four 0xff bytes inside the body of the first frame: CRC mismatch, valid frames follow
printf '\377\377\377\377' | dd of="$SCRATCH/corrupt/segments/000001.fbat" bs=1 seek=100 conv=notrunc 2>/dev/null
expect 4 --dir "$SCRATCH/corrupt" verify
out_has '"clean":false'
out_has '"problems_found":\[\{"entity":null,"problem":"segment 000001 offset [0-9]+: frame CRC or length invalid"\}'
expect 4 --dir "$SCRATCH/corrupt" dump
out_has '"problem":"CRC mismatch"'
# a decoder's own message (the format layer the tool links, bp_fmt) reaches the record
cp -r "$S" "$SCRATCH/badstore"
printf 'XXXX' | dd of="$SCRATCH/badstore/STORE" bs=1 seek=0 conv=notrunc 2>/dev/null
expect 4 --dir "$SCRATCH/badstore" dump
out_has '"problem":"STORE: not a batpak STORE file \(bad magic\)"'
rm -f "$SCRATCH/corrupt/index.ckpt" # without the checkpoint, open itself finds it
expect 4 --dir "$SCRATCH/corrupt" query
expect 4 --dir "$SCRATCH/corrupt" append acct:1 bank 0x1001 '{}'
expect 4 --dir "$SCRATCH/corrupt" verify
out_has '"clean":false'
# a stray file named like a segment is named as such, not as a missing segment
cp -r "$S" "$SCRATCH/stray"
cp "$SCRATCH/stray/segments/000001.fbat" "$SCRATCH/stray/segments/0000001.fbat"
expect 4 --dir "$SCRATCH/stray" query
err_has "segments/0000001.fbat: unexpected file name in segments/ (segment files are named NNNNNN.fbat)"
expect 4 --dir "$SCRATCH/stray" append acct:1 bank 0x1001 '{}'
err_has "0000001.fbat: unexpected file name"
# a segments path that is a file: said so, for a read and for a write
cp -r "$S" "$SCRATCH/segfile"
rm -rf "$SCRATCH/segfile/segments" && echo x >"$SCRATCH/segfile/segments"
expect 4 --dir "$SCRATCH/segfile" query
err_has "segments: not a directory (a store keeps its segment files there)"
expect 4 --dir "$SCRATCH/segfile" append acct:1 bank 0x1001 '{}'
err_has "segments: not a directory"

# ------------------------------- lost data: refused (exit 4) until --accept-loss
L="$SCRATCH/lost"
for i in $(seq 1 300); do printf '{"entity":"acct:%d","scope":"bank","kind":4097,"payload":{"i":%d}}\n' $((i % 3)) "$i"; done >"$SCRATCH/lost.ndjson"
expect 0 --dir "$L" init
expect_stdin 0 "$SCRATCH/lost.ndjson" --dir "$L" append --batch -
expect 0 --dir "$L" compact --dry-run # (opens and closes: a clean close wrote index.ckpt)
newest=$(ls "$L/segments" | sort | tail -n 1)
rm "$L/segments/$newest" # (a small store: its only segment)
sum_before=$(cd "$L" && find . -type f ! -name LOCK -exec md5sum {} + | sort)
expect 4 --dir "$L" verify
err_has "acknowledged events lost: segment ${newest%.fbat} is missing: index.ckpt (written at a clean close) covers events up to global_seq 300"
err_has "batpak --accept-loss"
out_has '"clean":false'
expect 4 --dir "$L" export
expect 4 --dir "$L" stats
expect 4 --dir "$L" append acct:1 bank 0x1001 '{}'
err_has "acknowledged events lost"
sum_after=$(cd "$L" && find . -type f ! -name LOCK -exec md5sum {} + | sort)
[ "$sum_before" = "$sum_after" ] || fail "a refused open changed the store's files"
expect 4 --dir "$L" --accept-loss verify # read-only: shows what is left, records nothing
err_has "acknowledged events lost"
out_has '"loss":\{"segments_lost":1,"events_lost":300,"first_lost_seq":1,'
expect 0 --dir "$L" stats --accept-loss --json # also after the command name
out_has '"events_lost":300'
sum_after=$(cd "$L" && find . -type f ! -name LOCK -exec md5sum {} + | sort)
[ "$sum_before" = "$sum_after" ] || fail "a read-only open with --accept-loss wrote"
expect 0 --dir "$L" --accept-loss append acct:1 bank 0x1001 '{}' # records the loss
expect 0 --dir "$L" verify # accepted and recorded: clean, no flag needed
out_has '"clean":true'
expect 0 --dir "$L" query --kind 0x0001
out_has '"events_lost":300'

# ------------------------------- damage in the newest segment: refused until --salvage
SV="$SCRATCH/salvage"
expect 0 --dir "$SV" init
for i in $(seq 1 30); do
    "${BATPAK_REAL_BIN:-$BIN}" --dir "$SV" append "acct:$((i % 3))" bank 0x1001 "{\"i\":$i}" >/dev/null ||
        fail "append $i to $SV"
done
rm -f "$SV/index.ckpt" # (no clean close: the open scans the segment)
printf '\377\377\377\377' | dd of="$SV/segments/000001.fbat" bs=1 seek=2000 conv=notrunc 2>/dev/null
sum_before=$(cd "$SV" && find . -type f ! -name LOCK -exec md5sum {} + | sort)
expect 4 --dir "$SV" stats
err_has "batpak --salvage"
expect 0 --dir "$SV" --salvage stats --json # read-only: the valid prefix, nothing moved
out_has '"loss":\{"segments_lost":0,"events_lost":[1-9][0-9]*,"first_lost_seq":[1-9]'
out_has '"note":"salvage: segment 000001 from offset'
sum_after=$(cd "$SV" && find . -type f ! -name LOCK -exec md5sum {} + | sort)
[ "$sum_before" = "$sum_after" ] || fail "a read-only open with --salvage wrote"
expect 4 --dir "$SV" --salvage verify
err_has "a writable open with --salvage moves the rest"
run --dir "$SV" append acct:9 bank 0x1001 '{}' --salvage # (after the command too)
[ "$code" -eq 0 ] || fail "exit $code, want 0"
err_has "quarantine/ now" # a success that moved data says so: its one line on stderr
[ "$(grep -c '' "$ERR")" -eq 1 ] || fail "$(grep -c '' "$ERR") stderr lines, want 1"
ls "$SV/quarantine/"*.cut >/dev/null 2>&1 || fail "salvage left nothing in quarantine/"
expect 0 --dir "$SV" verify
out_has '"clean":true'

# ------------------------------------------- locked: one writer (exit 5), readers beside it
if command -v flock >/dev/null 2>&1; then
    # the holder is the process that keeps the lock (no child outlives a kill), held until
    # it is killed, so a slow run (valgrind on a loaded machine) cannot outlast it
    (exec 9>>"$S/LOCK" && flock 9 && exec sleep 600) &
    holder=$!
    for _ in $(seq 100); do flock -n "$S/LOCK" true || break; sleep 0.05; done
    expect 5 --dir "$S" append acct:1 bank 0x1001 '{}' # a second writer: refused at once
    err_has "locked"
    err_has "pid"
    # reading commands take no lock: they work while a writer holds the store
    expect 0 --dir "$S" query
    expect 0 --dir "$S" verify
    out_has '"clean":true'
    expect 0 --dir "$S" stats --json
    expect 0 --dir "$S" export
    expect 0 --dir "$S" dump
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
else
    echo "note: flock(1) not found; lock test skipped" >&2
fi

# ----------------------------------------- beside a live writer (an application appending)
if [ -n "${BP_LIVE_WRITER:-}" ]; then
    LW=$SCRATCH/live
    "$BP_LIVE_WRITER" "$LW" >"$SCRATCH/live.out" 2>"$SCRATCH/live.err" &
    writer=$!
    for _ in $(seq 200); do grep -q ready "$SCRATCH/live.out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$SCRATCH/live.out" || fail "the live writer did not start: $(cat "$SCRATCH/live.err")"
    expect 0 --dir "$LW" query --entity live:1 --limit 5
    out_has '"entity":"live:1"'
    id=$(sed -n 's/.*"event_id":"\([0-9a-f-]*\)".*/\1/p' "$OUT" | head -1)
    expect 0 --dir "$LW" get "$id"
    out_has "$id"
    expect 0 --dir "$LW" stream live:2 --limit 3
    out_has '"entity":"live:2"'
    expect 0 --dir "$LW" ancestors "$id"
    expect 0 --dir "$LW" stats --json
    out_has '"events":[1-9]'
    out_has "\"writer_pid\":$writer,\"readers\":1,"
    out_has '"appends":[1-9]' # the writer's figures (DIR/LIVE), not this reader's zeros
    out_has '"writer_open":{"created":true'
    expect 0 --dir "$LW" stats
    out_has "^writer +pid $writer: [1-9][0-9]* append"
    out_has '^readers +1$'
    expect 0 --dir "$LW" stats --prom
    out_has '^batpak_appends_total [1-9]'
    expect 0 --dir "$LW" verify
    out_has '"clean":true'
    expect 0 --dir "$LW" export
    out_has '"entity":"live:3"'
    expect 0 --dir "$LW" snapshot "$SCRATCH/live-snap"
    expect 0 --dir "$SCRATCH/live-snap" verify # a copy that opens and verifies on its own
    out_has '"clean":true'
    # tail -f follows the writer: events published after it started come out
    what="batpak tail -f beside a live writer"
    before=$("$BIN" --dir "$LW" stats --json | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
    timeout 3 "$BIN" --dir "$LW" tail -f --interval 50 >"$OUT" 2>"$ERR" </dev/null
    last=$(sed -n 's/.*"global_seq":\([0-9]*\).*/\1/p' "$OUT" | tail -1)
    [ -n "$last" ] && [ "$last" -gt "$before" ] ||
        fail "tail -f printed up to seq ${last:-none}, the store had $before events before it"
    expect 5 --dir "$LW" append live:1 live 0x1001 '{}' # the one writer is the application
    err_has "locked"
    kill -TERM "$writer"
    wait "$writer" || fail "the live writer failed: $(cat "$SCRATCH/live.err")"
    expect 0 --dir "$LW" verify
    out_has '"clean":true'
    # a writer that shares no live page (here DIR/LIVE is a directory, which it cannot map)
    # is named so by stats, and tail -f says so on stderr instead of waiting in silence
    what="beside a writer without DIR/LIVE"
    LW2=$SCRATCH/live-nopage
    mkdir -p "$LW2/LIVE"
    "$BP_LIVE_WRITER" "$LW2" >"$SCRATCH/live2.out" 2>"$SCRATCH/live2.err" &
    writer2=$!
    for _ in $(seq 200); do grep -q ready "$SCRATCH/live2.out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$SCRATCH/live2.out" || fail "the second live writer did not start: $(cat "$SCRATCH/live2.err")"
    expect 0 --dir "$LW2" stats
    out_has "^writer +pid $writer2: shares no live page"
    timeout 10 "$BIN" --dir "$LW2" tail -f --interval 50 >"$OUT" 2>"$ERR" </dev/null
    err_has "(pid $writer2) shares no live page"
    kill -TERM "$writer2"
    wait "$writer2" || fail "the second live writer failed: $(cat "$SCRATCH/live2.err")"
fi

# ------------------------------------------------------------------ demo
expect 0 --dir "$SCRATCH/demo" demo
out_has '^open .*created a new store'
out_has '^schemas +recorded 4 payload type'
out_has 'replayed'
out_has '^stale .*refused'
out_has '^transfer .*atomic batch'
out_has '^gate .*denies'
out_has '^balance +acct:alice +70 '
out_has '^cursor '
out_has '^verify +clean'
expect 0 --dir "$SCRATCH/demo" demo # re-runnable
out_has '^run +#2 '
out_has 'already open'
out_lacks 'attempt [12].*written$'
out_has '^balance +acct:alice +140 '
expect 0 --dir "$SCRATCH/demo" verify
expect 0 --dir "$SCRATCH/demo" query --entity batpak:store --scope batpak:lifecycle
out_lines 2 # a long-running command (demo, relay) logs its open like a program
expect 0 --dir "$SCRATCH/demo" query --kind 0x0002 # the persisted denials, as JSON
out_lines 2
out_has '"payload":\{"v":1,"kind":57347,"digest":"[0-9a-f]{64}","denials":\[\{"gate":"no-overdraft","code":1,"message":"balance [0-9]+ cannot cover 1000000"\}\]\}'
expect 1 --dir "$SCRATCH/demo" demo extra
# the demo stores its payload types: append checks a payload of their kinds against them
expect 0 --dir "$SCRATCH/demo" schema
out_lines 4
out_has '^\{"name":"demo.deposited","kind":57346,"version":1,'
expect 1 --dir "$SCRATCH/demo" append acct:carol bank 0xE002 '{"amount":1,"bogus":2}'
err_has "bogus"
expect 0 --dir "$SCRATCH/demo" demo # and records them once
out_lacks '^schemas '
expect 0 --dir "$SCRATCH/demo" schema
out_lines 4
# the CLI registers the demo's payload types: output uses their JSON form, and a payload
# its type does not read (in a store that holds no type for its kind) is shown untyped with
# the reason
expect 0 --dir "$SCRATCH/demo" stream acct:alice
out_has '"kind":57346,.*"payload":\{"amount":100\}'
expect 0 --dir "$SCRATCH/nodemo" init
expect 0 --dir "$SCRATCH/nodemo" append acct:carol bank 0xE002 '{"amount":1,"bogus":2}'
expect 0 --dir "$SCRATCH/nodemo" stream acct:carol
out_has '"payload_error":"event [0-9]+ \(acct:carol\): decode .demo.deposited. v1 at offset [0-9]+: unknown field .bogus.","payload":\{"amount":1,"bogus":2\}'

# ------------------------------------------------- keygen, signed receipts
K=$SCRATCH/keys
mkdir -p "$K"
expect 0 keygen --out "$K/a"
out_has "^\\{\"secret_key\":\"[^\"]+/a.key\",\"public_key\":\"[^\"]+/a.pub\",\"key_id\":\"$HEX64\"\\}$"
[ "$(stat -c %a "$K/a.key")" = 600 ] || fail "secret key mode $(stat -c %a "$K/a.key"), want 600"
expect 1 keygen --out "$K/a" # never overwrites
err_has 'already exists'
expect 0 keygen --out "$K/b"
expect 1 keygen --out ""
expect 1 keygen extra
SS=$SCRATCH/signed
"$BIN" --dir "$SS" init >/dev/null
expect 0 --dir "$SS" append --sign-key "$K/a.key" acct:1 bank 0x1001 '{"amount":5}'
out_has '"signed":true,"key_id":"[0-9a-f]{64}","signature":"[0-9a-f]{128}"'
cp "$OUT" "$SCRATCH/r1.json"
expect 0 verify-receipt "$SCRATCH/r1.json" --pubkey "$K/a.pub"
out_has '^\{"valid":true,"type":"append_receipt"'
expect 0 --dir "$SS" verify-receipt "$SCRATCH/r1.json" # the store's registry
expect_stdin 0 "$SCRATCH/r1.json" verify-receipt - --pubkey "$K/b.pub" --pubkey "$K/a.pub"
# rotation via the environment: a receipt signed by b verifies in the store next to a's
BATPAK_SIGNING_KEY="$K/b.key" "$BIN" --dir "$SS" append acct:1 bank 0x1001 2 >"$SCRATCH/r2.json"
cat "$SCRATCH/r1.json" "$SCRATCH/r2.json" >"$SCRATCH/both.ndjson"
expect 0 --dir "$SS" verify-receipt "$SCRATCH/both.ndjson"
out_lines 2
expect 4 verify-receipt "$SCRATCH/both.ndjson" --pubkey "$K/a.pub" # b is not given
err_has 'not in the key registry'
# a tampered field, a tampered signature
sed 's/"clock":1/"clock":2/' "$SCRATCH/r1.json" >"$SCRATCH/bad.json"
expect 4 verify-receipt "$SCRATCH/bad.json" --pubkey "$K/a.pub"
err_has 'does not verify'
# (the first hex digit of the signature changes: 0 -> 1, anything else -> 0)
sed 's/"signature":"0/"signature":"X/; s/"signature":"[1-9a-f]/"signature":"0/; s/"signature":"X/"signature":"1/' \
    "$SCRATCH/r1.json" >"$SCRATCH/bad.json"
cmp -s "$SCRATCH/r1.json" "$SCRATCH/bad.json" && fail "the signature was not changed"
expect 4 verify-receipt "$SCRATCH/bad.json" --pubkey "$K/a.pub"
# malformed input, bad keys
echo '{"type":"append_receipt"' >"$SCRATCH/bad.json"
expect 1 verify-receipt "$SCRATCH/bad.json" --pubkey "$K/a.pub"
err_has 'line 1'
echo '{"type":"append_receipt","version":1}' >"$SCRATCH/bad.json"
expect 1 verify-receipt "$SCRATCH/bad.json" --pubkey "$K/a.pub"
err_has "field 'store_id' is missing"
: >"$SCRATCH/empty.json"
expect 1 verify-receipt "$SCRATCH/empty.json" --pubkey "$K/a.pub"
expect 1 verify-receipt "$SCRATCH/r1.json" --pubkey "$K/a.key"
err_has 'secret key file, not a public'
expect 1 verify-receipt "$SCRATCH/r1.json" --pubkey "$K/missing.pub"
expect 1 verify-receipt --pubkey "$K/a.pub"
chmod 644 "$K/a.key"
expect 1 --dir "$SS" append --sign-key "$K/a.key" acct:1 bank 0x1001 3
err_has 'chmod 600'
expect 0 --dir "$SS" verify

# ------------------------------------------- more segments than descriptors
# A store of 1,500 segments (made by test_segfiles --make: CTest passes its path) under
# `ulimit -n 256`: every command that reads it whole works (no descriptor per segment).
if [ -n "${BP_MAKE_SEGMENTS:-}" ] && [ -x "$BP_MAKE_SEGMENTS" ]; then
    MANY=$SCRATCH/many
    what="test_segfiles --make"
    "$BP_MAKE_SEGMENTS" --make "$MANY" 1500 >"$OUT" 2>"$ERR" || fail "cannot make the store"
    limited() { # CODE ARGS...: expect, in a shell limited to 256 open files
        local want=$1
        shift
        what="ulimit -n 256; batpak $*"
        (ulimit -n 256 && exec "$BIN" "$@" >"$OUT" 2>"$ERR" </dev/null)
        code=$?
        check_exit "$want"
    }
    limited 0 --dir "$MANY" verify
    out_has 'segments'
    limited 0 --dir "$MANY" stats --json
    first_num() { grep -o "\"$1\":[0-9]*" "$OUT" | head -n 1 | cut -d: -f2; }
    n_segs=$(first_num segments)
    [ "${n_segs:-0}" -ge 1500 ] || fail "stats: ${n_segs:-no} segments, want >= 1500"
    n_many=$(first_num events)
    limited 0 --dir "$MANY" export
    [ "$(grep -c '' "$OUT")" -eq "$n_many" ] || fail "export: not $n_many lines"
    limited 0 --dir "$MANY" query --entity fd:3
    out_has '"entity":"fd:3"'
    limited 0 --dir "$MANY" append fd:9 bank 0x1001 '{"n":1}'
    limited 0 --dir "$MANY" verify
else
    echo "cli_test: BP_MAKE_SEGMENTS unset: the 1,500-segment case is skipped" >&2
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_test: $failures failure(s)" >&2
    exit 1
fi
echo "cli_test: all passed"
exit 0
