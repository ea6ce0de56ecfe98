#!/usr/bin/env bash
# batpak relay / follow as a user runs them: a real nats-server on 127.0.0.1 (JetStream, files
# in the scratch dir), a writer's store relayed, a replica followed while read-only commands
# read it, the follower killed (-9) and restarted, and the replica's export equal to the
# source's at the end. Skipped (exit 77) only when nats-server is not installed.
#   usage: replicate_cli_test.sh PATH/TO/batpak SCRATCH_DIR
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SCRATCH=$2
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH" || exit 1
SCRATCH=$(cd "$SCRATCH" && pwd)
cd "$SCRATCH" || exit 1
unset BATPAK_DIR

NATS=$(command -v nats-server || ls /usr/sbin/nats-server /usr/bin/nats-server 2>/dev/null | head -1)
if [ -z "$NATS" ]; then
    echo "SKIP: nats-server not found (Debian package nats-server; scripts/install-deps.sh installs it)"
    exit 77
fi
if "$BIN" follow 2>&1 | grep -q "not compiled in"; then
    echo "SKIP: this batpak was built without libnats"
    exit 77
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

# with no server to reach, relay and follow keep trying, and SIGTERM stops them at once (exit 0)
DEAD=nats://127.0.0.1:1
"$BIN" --dir dead-src init >/dev/null || fail "init dead-src" # (relay does not create a store)
for cmd in "--dir dead-src relay --nats $DEAD --stream X" "--dir dead-rep follow --nats $DEAD --stream X"; do
    # shellcheck disable=SC2086
    "$BIN" $cmd >dead.json 2>dead.err &
    dpid=$!
    pids+=($dpid)
    sleep 0.5
    kill -TERM "$dpid"
    for _ in $(seq 30); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$dpid" 2>/dev/null; then
        fail "batpak $cmd: still running 3 s after SIGTERM"
    else
        wait "$dpid"
        code=$?
        [ $code -eq 0 ] && grep -q '"stream":"X"' dead.json ||
            fail "batpak $cmd: exit $code after SIGTERM, $(cat dead.json dead.err)"
    fi
done

# a free port on 127.0.0.1
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=nats://127.0.0.1:$PORT
"$NATS" -a 127.0.0.1 -p "$PORT" -js -sd "$SCRATCH/js" >"$SCRATCH/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

# the source: 30,000 events in batches, from the CLI
/usr/bin/python3 - >"$SCRATCH/batch.ndjson" <<'PY'
import json
for i in range(3000):
    print(json.dumps({"entity": "acct:%d" % (i % 97), "scope": "bank", "kind": 4097,
                      "payload": {"i": i, "memo": "x" * 40}}))
PY
"$BIN" --dir src init >/dev/null || fail "init src"
for _ in $(seq 10); do
    "$BIN" --dir src append --batch "$SCRATCH/batch.ndjson" >/dev/null || fail "append --batch"
done

# bad input: exit 1 with a line naming what is wrong; nothing runs
"$BIN" --dir src relay --stream S >/dev/null 2>err && fail "relay without --nats"
grep -q -- "--nats URL is required" err || fail "relay without --nats: $(cat err)"
"$BIN" --dir src relay --nats "$URL" --stream 'bad.name' >/dev/null 2>err
[ $? -eq 1 ] && grep -q "stream" err || fail "relay with a bad stream name: $(cat err)"
"$BIN" --dir rep follow --nats "$URL" --stream NOSUCH --until-caught-up >/dev/null 2>err
[ $? -eq 2 ] && grep -q "no such stream" err || fail "follow of a missing stream: $(cat err)"

"$BIN" --dir src relay --nats "$URL" --stream ORDERS --until-caught-up >relay.json 2>err ||
    fail "relay: $(cat err)"
grep -q '"caught_up":true' relay.json || fail "relay did not catch up: $(cat relay.json)"

# follow in the background; read the replica while it runs; kill it; start it again
"$BIN" --dir rep follow --nats "$URL" --stream ORDERS >follow1.json 2>follow1.err &
fpid=$!
pids+=($fpid)
sleep 0.3
for _ in 1 2 3; do
    "$BIN" --dir rep stats --json >/dev/null 2>err || fail "reading the replica while it follows: $(cat err)"
    sleep 0.1
done
kill -9 "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
# more events, relayed, then the follower again until caught up
"$BIN" --dir src append acct:1 bank 0x1001 '{"late":true}' >/dev/null || fail "append"
"$BIN" --dir src relay --nats "$URL" --stream ORDERS --until-caught-up >/dev/null 2>err ||
    fail "relay (2): $(cat err)"
"$BIN" --dir rep follow --nats "$URL" --stream ORDERS --until-caught-up >follow2.json 2>err ||
    fail "follow (2): $(cat err)"
"$BIN" --dir rep verify >/dev/null 2>err || fail "replica verify: $(cat err)"
"$BIN" --dir src export >src.ndjson
"$BIN" --dir rep export >rep.ndjson
cmp -s src.ndjson rep.ndjson || fail "replica export differs from the source's ($(wc -l <src.ndjson) vs $(wc -l <rep.ndjson) lines)"
"$BIN" --dir src stats | grep -q "checkpoint relay.ORDERS .* 0 event(s) behind" ||
    fail "stats does not show the relay's position: $("$BIN" --dir src stats | tail -2)"

# a replica that received another write is refused, naming the seq
"$BIN" --dir rep append acct:1 bank 0x1001 '{}' >/dev/null 2>&1
"$BIN" --dir src append acct:2 bank 0x1001 '{}' >/dev/null
"$BIN" --dir src relay --nats "$URL" --stream ORDERS --until-caught-up >/dev/null 2>&1
"$BIN" --dir rep follow --nats "$URL" --stream ORDERS --until-caught-up >/dev/null 2>err
code=$?
[ $code -eq 3 ] && grep -q "another event at global_seq" err ||
    fail "follow into a written-to replica: exit $code, $(cat err)"

echo "$((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
