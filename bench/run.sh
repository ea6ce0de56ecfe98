#!/usr/bin/env bash
# bench/run.sh — the benchmark suite: every workload on batpak, the raw file,
# SQLite, LMDB and RocksDB, in one run; medians of REPS runs; tables with
# ratios to the raw file and to the best peer; the performance targets checked.
#
#   bench/run.sh full    # make bench: W1 sizes, writes bench/RESULTS.md
#   bench/run.sh quick   # make bench-quick / CTest: tiny sizes, proves it works
#   bench/run.sh big50m  # the big-store workload alone at 50M events (not part of full):
#                        # its tables in build/bench/big50m/, RESULTS.md left alone
#   bench/run.sh tables  # the tables and RESULTS.md again from build/bench/results.tsv
#                        # (BENCH_SECS: how long its runs took)
#
# Environment: BENCH_BIN (the batpak-bench program), BENCH_NATS_BIN (batpak-bench-nats,
# the relay workload: built with libnats; "none" skips it), BENCH_OUT (result folder,
# default build/bench), BENCH_DIR (store directory: must be on the disk to
# measure, not tmpfs; default /var/tmp/batpak-bench), REPS (3), BACKENDS, BENCH_CLI (the
# batpak CLI, default build/batpak: the big workload times it), BENCH_BIG (the big
# workload's sizes in the full run, default 10000000; e.g. "10000000 50000000"). The big
# store is built once into BENCH_DIR/big-N and kept there for the next run (about 360 B
# an event: 3.5 GB at 10M); the quick run's is removed.
set -euo pipefail
MODE=${1:-full}
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build/batpak-bench}
NATS_BIN=${BENCH_NATS_BIN:-build/batpak-bench-nats}
OUT=${BENCH_OUT:-build/bench}
BASE=${BENCH_DIR:-/var/tmp/batpak-bench}
DIR=$BASE/$$
CLI=${BENCH_CLI:-build/batpak}
REPS=${REPS:-3}
BACKENDS=${BACKENDS:-raw batpak sqlite lmdb rocksdb}
[ -x "$BIN" ] || { echo "bench: $BIN not found: build it first (make bench)" >&2; exit 1; }
mkdir -p "$OUT" "$(dirname "$DIR")"
NATS_PID=
trap '[ -z "$NATS_PID" ] || kill "$NATS_PID" 2>/dev/null; rm -rf "$DIR" "$DIR.src" "$DIR.nats" "$DIR".big-*' EXIT

TABLES_ONLY=0 # bench/run.sh tables: the tables and RESULTS.md again from $OUT/results.tsv
if [ "$MODE" = tables ]; then MODE=full; TABLES_ONLY=1; fi
BIG_ONLY=0 # bench/run.sh big50m: the big-store workload alone
case "$MODE" in
  full)  N=500000; NSYNC=4000; NBIG=50000; NSYNCBIG=1000; NTHR=1000; OPENS="100000 1000000"; PROJ_E=200; NDELIVER=500000; NHOLES=1100000; EHOLES=100000; NRELAY=200000; NFOLLOW=20000; BIGS=${BENCH_BIG:-10000000} ;;
  quick) N=3000;   NSYNC=50;   NBIG=300;   NSYNCBIG=20;   NTHR=25;   OPENS="2000"; PROJ_E=2; NDELIVER=3000; NHOLES=2200; EHOLES=200; NRELAY=2000; NFOLLOW=200; BIGS=20000 ;;
  big50m) BIGS=50000000; BIG_ONLY=1; OPENS=; BACKENDS=batpak; OUT=$OUT/big50m; mkdir -p "$OUT" ;;
  *) echo "usage: bench/run.sh full|quick|tables|big50m" >&2; exit 2 ;;
esac
# contend: 8 CAS writers x 2,500 logical appends (quick: x 10), each run capped at CSECS
if [ "$MODE" = full ]; then NCONT=20000; CSECS=60; else NCONT=80; CSECS=10; fi

run() { # backend args...
  local b=$1; shift
  echo "+ batpak-bench --backend $b $*" >&2
  echo "batpak-bench --backend \$B --dir \$DIR $*" >>"$OUT/commands.txt"
  "$BIN" --backend "$b" --dir "$DIR" "$@"
}

# The relay workload needs libnats (batpak-bench-nats) and a nats-server: its own, on a free
# loopback port (-p -1: the server picks it and writes it to its ports file), JetStream in
# a directory next to the stores. Without either it is skipped, saying so.
NATS_URL=
nats_server=$(command -v nats-server || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || true)
if [ "$BIG_ONLY" = 1 ]; then
  : # no relay workload
elif [ "$NATS_BIN" = none ] || [ ! -x "$NATS_BIN" ]; then
  echo "bench: relay workload skipped: batpak-bench-nats not built (libnats-dev missing: scripts/install-deps.sh installs it)" >&2
elif [ -z "$nats_server" ]; then
  echo "bench: relay workload skipped: nats-server not found (scripts/install-deps.sh installs it)" >&2
else
  mkdir -p "$DIR.nats/js"
  "$nats_server" -a 127.0.0.1 -p -1 -js -sd "$DIR.nats/js" --ports_file_dir "$DIR.nats" \
    >"$DIR.nats/log" 2>&1 &
  NATS_PID=$!
  for _ in $(seq 200); do
    NATS_URL=$(sed -n 's/.*"nats":\["\([^"]*\)".*/\1/p' "$DIR.nats"/*.ports 2>/dev/null || true)
    [ -n "$NATS_URL" ] && grep -q "Server is ready" "$DIR.nats/log" && break
    NATS_URL=; sleep 0.05
  done
  if [ -z "$NATS_URL" ]; then
    echo "bench: nats-server did not start:" >&2; tail -5 "$DIR.nats/log" >&2; exit 1
  fi
  echo "bench: nats-server $("$nats_server" --version | awk '{print $2}') at $NATS_URL" >&2
fi
run_nats() { # workload: the relay, or a plain libnats publisher of the same messages
  echo "+ batpak-bench-nats --workload $1 --n $NRELAY --payload 100" >&2
  echo "batpak-bench-nats --workload $1 --url \$NATS_URL --dir \$DIR --n $NRELAY --payload 100" >>"$OUT/commands.txt"
  "$NATS_BIN" --workload "$1" --url "$NATS_URL" --dir "$DIR" --n "$NRELAY" --payload 100
}
# The big store (batpak only, bench/big.c): built once into BENCH_DIR/big-N and reused while
# its marker matches (the quick run's, next to its other stores, goes with them); open,
# RssAnon and CLI wall times REPS times inside, each in a fresh process.
run_big() { # n
  local cache=$BASE/big-$1
  [ "$MODE" = quick ] && cache=$DIR.big-$1
  [ -x "$CLI" ] || { echo "bench: $CLI (the batpak CLI) not found: build it first" >&2; exit 1; }
  echo "+ batpak-bench --backend batpak --workload big --n $1" >&2
  echo "batpak-bench --backend batpak --dir \$DIR --workload big --n $1 --entities 100000 --payload 100 --reps $REPS --cache \$BENCH_DIR/big-$1 --cli build/batpak" >>"$OUT/commands.txt"
  "$BIN" --backend batpak --dir "$DIR" --workload big --n "$1" --entities 100000 --payload 100 \
    --reps "$REPS" --cache "$cache" --cli "$CLI"
}

start=$(date +%s)
if [ "$TABLES_ONLY" = 1 ]; then
  [ -s "$OUT/results.tsv" ] || { echo "bench: no $OUT/results.tsv to make tables of" >&2; exit 1; }
else
: >"$OUT/results.tsv"
: >"$OUT/commands.txt"
{
  if [ "$BIG_ONLY" = 1 ]; then REPS_SUITE=0; else REPS_SUITE=$REPS; fi
  for rep in $(seq "$REPS_SUITE"); do
    for b in $BACKENDS; do # contention (bench/contend.c): batpak and SQLite only (raw has no CAS)
      case $b in batpak | sqlite) run "$b" --workload contend --threads 8 --entities 100000 \
        --n "$NCONT" --payload 1024 --seconds "$CSECS" ;; esac
    done
    for b in $BACKENDS; do
      run "$b" --workload append1k --n "$N" --payload 100
      run "$b" --workload batch --n "$N" --payload 100
      run "$b" --workload bulk --n "$N" --payload 100
      run "$b" --workload nosync --n "$N" --payload 100
      run "$b" --workload sync --n "$NSYNC" --payload 100
      for t in 1 2 4 8; do
        run "$b" --workload threads --threads "$t" --n $((NTHR * (t < 2 ? 2 : t))) --payload 100
      done
      run "$b" --workload append1k --n "$NBIG" --payload 4096 --entities 100
      run "$b" --workload batch --n "$NBIG" --payload 4096 --entities 100
      run "$b" --workload sync --n "$NSYNCBIG" --payload 4096 --entities 100
      run "$b" --workload project --n $((PROJ_E * 1000)) --entities "$PROJ_E" --payload 100
    done
    # typed payloads: batpak only (the peers store bytes, so they have no such figure)
    run batpak --workload project_typed --n $((PROJ_E * 1000)) --entities "$PROJ_E"
    run batpak --workload deliver --n "$NDELIVER" --payload 100
    # a reader process following a durable writer (bench/follow.c)
    run batpak --workload follow --n "$NFOLLOW" --payload 100
    # the relay next to a plain async publisher, one after the other on the same server
    if [ -n "$NATS_URL" ]; then run_nats pub; run_nats relay; fi
  done
  # open: the store is built once per size; each open runs on a fresh copy, REPS times
  for n in $OPENS; do
    for b in $BACKENDS; do
      run "$b" --workload open --n "$n" --payload 100 --kill 0 --reps "$REPS"
      run "$b" --workload open --n "$n" --payload 100 --kill 1 --reps "$REPS"
    done
  done
  # open after a compaction that left NHOLES - EHOLES seq holes (batpak only), next to the
  # same store before it and a store of the EHOLES kept events without holes
  [ "$BIG_ONLY" = 1 ] ||
    run batpak --workload open_compacted --n "$NHOLES" --entities "$EHOLES" --payload 100 --reps "$REPS"
  # the big store: open, memory and CLI times at 10M events (issue 26)
  for n in $BIGS; do run_big "$n"; done
} | tee -a "$OUT/results.tsv" | grep -v '^[RV]' || true
fi
secs=$(( $(date +%s) - start ))
if [ "$TABLES_ONLY" = 1 ]; then secs=${BENCH_SECS:-$secs}; fi # (the runs' own time)

# medians: backend, workload, figure -> median value, unit
awk -F'\t' '$1 == "R" {
    k = $2 "\t" $3 "\t" $4; v[k] = v[k] " " $5; u[k] = $6 }
  END { for (k in v) { n = split(v[k], a, " ")
      for (i = 2; i <= n; i++) { x = a[i] + 0; j = i - 1
        while (j > 0 && a[j] + 0 > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
      printf "%s\t%s\t%d\t%s\n", k, a[int((n + 1) / 2)], n, u[k] } }' \
  "$OUT/results.tsv" | sort >"$OUT/medians.tsv"

# every backend must have produced every figure batpak produced (the quick run's check)
missing=0
for b in $BACKENDS; do
  [ "$BIG_ONLY" = 1 ] && break # batpak-only figures
  want=$(awk -F'\t' '$1 == "batpak" && $2 !~ /_batpak\/|^contend/ { print $2 "\t" $3 }' "$OUT/medians.tsv" | sort)
  have=$(awk -F'\t' -v b="$b" '$1 == b && $2 !~ /_batpak\/|^contend/ { print $2 "\t" $3 }' "$OUT/medians.tsv" | sort)
  if [ "$want" != "$have" ] || [ -z "$have" ]; then
    echo "bench: backend $b is missing figures:" >&2
    comm -23 <(echo "$want") <(echo "$have") >&2
    missing=1
  fi
done
# the big workload's figures (batpak only, so not checked above; it runs last: a failure
# there would otherwise go unseen)
for n in $BIGS; do
  [ "$TABLES_ONLY" = 1 ] && break
  for f in disk_per_event fidx_per_event open_clean_ms rss_anon_mb_after_open \
    rss_anon_mb_after_10k_reads cli_get_ms cli_stream10_ms cli_stats_ms open_killed_ms \
    live_cli_get_ms live_cli_stream10_ms live_cli_stats_ms live_ui_entities_ms; do
    awk -F'\t' -v w="big$((n / 1000))k_batpak/p100" -v f="$f" \
      '$1 == "batpak" && $2 == w && $3 == f { ok = 1 } END { exit !ok }' "$OUT/medians.tsv" ||
      { echo "bench: the big workload ($n events) has no figure $f" >&2; missing=1; }
  done
done
[ "$missing" = 0 ] || exit 1

# tables: one row per workload/figure; ratio batpak/raw and batpak/best peer
# (throughputs: higher is better; everything else: lower is better)
awk -F'\t' -v backends="$BACKENDS" '
  { val[$2 "\t" $3, $1] = $4; unit[$2 "\t" $3] = $6; keys[$2 "\t" $3] = 1 }
  function fmt(x) {
    if (x == "") return "-"
    if (x >= 100000) return sprintf("%.0fk", x / 1000)
    if (x >= 100) return sprintf("%.0f", x)
    if (x >= 10) return sprintf("%.1f", x)
    if (x > 0 && x < 0.1) return sprintf("%.2g", x)
    return sprintf("%.2f", x)
  }
  END {
    nb = split(backends, b, " ")
    printf "| workload | figure | unit |"
    for (i = 1; i <= nb; i++) printf " %s |", b[i]
    printf " batpak / raw | batpak / best peer |\n|---|---|---|"
    for (i = 1; i <= nb; i++) printf "---:|"
    printf "---:|---:|\n"
    n = 0
    for (k in keys) order[++n] = k
    for (i = 2; i <= n; i++) { x = order[i]; j = i - 1
      while (j > 0 && order[j] > x) { order[j + 1] = order[j]; j-- } order[j + 1] = x }
    for (r = 1; r <= n; r++) {
      k = order[r]; split(k, m, "\t"); hi = unit[k] == "ev/s"
      printf "| %s | %s | %s |", m[1], m[2], unit[k]
      best = ""
      for (i = 1; i <= nb; i++) {
        v = val[k, b[i]]; printf " %s |", fmt(v)
        if (b[i] != "raw" && b[i] != "batpak" && v != "")
          if (best == "" || (hi ? v + 0 > best + 0 : v + 0 < best + 0)) best = v
      }
      bp = val[k, "batpak"]; rw = val[k, "raw"]
      printf " %s | %s |\n", (rw + 0 > 0 && bp != "") ? sprintf("%.2f×", bp / rw) : "-",
        (best + 0 > 0 && bp != "") ? sprintf("%.2f×", bp / best) : "-"
    }
  }' "$OUT/medians.tsv" >"$OUT/tables.md"

# the performance targets (the big50m run: its own rows only)
awk -F'\t' -v bigonly="$BIG_ONLY" '
  { v[$1, $2, $3] = $4 }
  function row(name, got, goal, ok) {
    printf "| %s | %s | %s | %s |\n", name, got, goal, ok ? "met" : "**not met**"
    if (!ok) missed++
  }
  function ratio(w, f) { r = v["raw", w, f] + 0; return r > 0 ? v["batpak", w, f] / r : 0 }
  END {
    print "| target | measured | goal | |"
    print "|---|---:|---:|---|"
    if (!bigonly) {
    x = ratio("append1k/p100", "append"); row("append, 1 event/call, sync every 1000", sprintf("%.2f× raw", x), "≥ 0.5× raw", x >= 0.5)
    x = ratio("nosync/p100", "append"); row("append, 1 event/call, no sync until the end", sprintf("%.2f× raw", x), "≥ 0.6× raw", x >= 0.6)
    x = ratio("batch256/p100", "append"); row("batch of 256, fsync per batch", sprintf("%.2f× raw", x), "≥ 0.7× raw", x >= 0.7)
    x = ratio("bulk256/p100", "append"); row("batches of 256, one sync at the end (bulk load)", sprintf("%.2f× raw", x), "≥ 0.5× raw", x >= 0.5)
    x = ratio("sync/p100", "append"); row("fsync per event, 1 thread", sprintf("%.2f× raw", x), "≥ 0.9× raw", x >= 0.9)
    one = v["batpak", "threads1/p100", "append"]; x = one > 0 ? v["batpak", "threads8/p100", "append"] / one : 0
    row("durable, 8 threads (group commit)", sprintf("%.1f× 1 thread", x), "≥ 5×", x >= 5)
    x = v["batpak", "append1k/p100", "get_p50"]; row("get by id p50", sprintf("%.2f µs", x), "≤ 2 µs", x <= 2)
    x = ratio("append1k/p100", "stream_p50"); row("stream one entity with payloads p50", sprintf("%.2f× raw", x), "≤ 1.5× raw", x > 0 && x <= 1.5)
    x = v["batpak", "open_clean1000k/p100", "open"]; if (x != "") row("open after clean close, 1M events", sprintf("%.0f ms", x), "≤ 150 ms", x <= 150)
    x = v["batpak", "open_killed1000k/p100", "open"]; if (x != "") row("open after kill -9, 1M events", sprintf("%.0f ms", x), "≤ 1500 ms", x <= 1500)
    x = v["batpak", "open_clean1000k/p100", "rss_per_event"]; if (x != "") row("index memory (resident, after open)", sprintf("%.0f B/event", x), "≤ 100 B/event", x <= 100)
    x = v["batpak", "append1k/p100", "disk_overhead_per_event"]; row("disk beyond entity+scope+payload", sprintf("%.0f B/event", x), "≤ 200 B/event", x <= 200)
    x = v["batpak", "project/p100", "fold_cold_p50"]; row("cold fold of a 1,000-event entity p50", sprintf("%.3f ms", x), "≤ 0.5 ms", x > 0 && x <= 0.5)
    x = v["batpak", "project/p100", "fold_after_append_p50"]; row("repeated project after 1 new event p50", sprintf("%.2f µs", x), "≤ 20 µs", x > 0 && x <= 20)
    x = v["batpak", "project_typed_batpak/p130", "fold_cold_p50"]; row("the same cold fold, typed payloads decoded", sprintf("%.3f ms", x), "≤ 0.5 ms", x > 0 && x <= 0.5)
    x = v["batpak", "project_typed_batpak/p130", "fold_after_append_p50"]; row("the same repeated project, typed", sprintf("%.2f µs", x), "≤ 20 µs", x > 0 && x <= 20)
    }
    w = "contend8_e100000/p1024"; if (v["batpak", w, "append"] != "") {
      s = v["sqlite", w, "append"] + 0; x = s > 0 ? v["batpak", w, "append"] / s : 0
      row("contention: 8 CAS writers, Zipf(0.99) over 100k entities, durable", sprintf("%.2f× SQLite", x), "≥ 5× SQLite", x >= 5)
      x = v["batpak", w, "conflicts_per_append"]; row("contention: conflicts per successful append", sprintf("%.3g", x), "< 0.1", x < 0.1)
      x = v["batpak", w, "latency_p99"]; row("contention: p99 of a logical append, retries included", sprintf("%.2f ms", x), "≤ 5 ms", x <= 5) }
    w = "follow_batpak/p100"; if (v["batpak", w, "full_p50"] != "") {
      x = v["batpak", w, "rate1000_p50"]; y = v["batpak", w, "rate1000_p99"]
      row("follow: receipt to a reader in another process, 1,000 appends/s, p50 / p99", sprintf("%.3f / %.3f ms", x, y), "≤ 1 / 10 ms", x <= 1 && y <= 10)
      x = v["batpak", w, "full_p50"]; y = v["batpak", w, "full_p99"]
      row("follow: the same at full speed (durable, 1 thread), p50 / p99", sprintf("%.3f / %.3f ms", x, y), "≤ 1 / 10 ms", x <= 1 && y <= 10) }
    w = "big10000k_batpak/p100"; if (v["batpak", w, "open_clean_ms"] != "") {
      x = v["batpak", w, "open_clean_ms"]; row("10M events: open after clean close", sprintf("%.0f ms", x), "≤ 20 ms", x <= 20)
      x = v["batpak", w, "open_killed_ms"]; row("10M events: open after kill -9 (1,000 events after the last clean close)", sprintf("%.0f ms", x), "≤ 20 ms (+ tail scan)", x <= 20)
      x = v["batpak", w, "rss_anon_mb_after_open"]; row("10M events: RssAnon right after open", sprintf("%.0f MB", x), "≤ 32 MB", x <= 32)
      x = v["batpak", w, "cli_get_ms"]; row("10M events: `batpak get ID`, wall", sprintf("%.0f ms", x), "≤ 50 ms", x <= 50)
      x = v["batpak", w, "cli_stream10_ms"]; row("10M events: `batpak stream ENTITY --limit 10`, wall", sprintf("%.0f ms", x), "≤ 50 ms", x <= 50)
      x = v["batpak", w, "cli_stats_ms"]; row("10M events: `batpak stats`, wall", sprintf("%.0f ms", x), "≤ 50 ms", x <= 50)
      x = v["batpak", w, "live_cli_get_ms"]; y = v["batpak", w, "live_cli_stream10_ms"]; z = v["batpak", w, "live_cli_stats_ms"]
      row(sprintf("10M events, beside a live writer holding %.0fk events unsealed: `get` / `stream --limit 10` / `stats`, wall", v["batpak", w, "live_unsealed_events"] / 1000), sprintf("%.0f / %.0f / %.0f ms", x, y, z), "≤ 50 ms", x <= 50 && y <= 50 && z <= 50)
      x = v["batpak", w, "live_ui_entities_ms"]; row("10M events, beside the live writer: `batpak ui` entity list (/api/entities, 100 names), at the endpoint", sprintf("%.0f ms", x), "≤ 200 ms", x <= 200) }
    w = "big50000k_batpak/p100"; if (v["batpak", w, "open_clean_ms"] != "") {
      x = v["batpak", w, "open_clean_ms"]; row("50M events: open after clean close", sprintf("%.0f ms", x), "≤ 50 ms", x <= 50)
      x = v["batpak", w, "rss_anon_mb_after_10k_reads"]; row("50M events: RssAnon after 10,000 random reads", sprintf("%.0f MB", x), "≤ 64 MB", x <= 64) }
    p = v["batpak", "relay_batpak/p100", "pub"]; x = p > 0 ? v["batpak", "relay_batpak/p100", "relay"] / p : 0
    if (p != "") row("relay ≥ 0.8x plain async publisher (JetStream, 100 B)", sprintf("%.2f× (%.0f / %.0f ev/s)", x, v["batpak", "relay_batpak/p100", "relay"], p), "≥ 0.8×", x >= 0.8)
    printf "\n%d target(s) not met.\n", missed + 0
  }' "$OUT/medians.tsv" >"$OUT/targets.md"

echo
cat "$OUT/targets.md"
echo
cat "$OUT/tables.md"
echo
echo "bench: $MODE run took ${secs} s; results in $OUT/" >&2

if [ "$MODE" = full ]; then
  {
    echo "# Benchmark results"
    echo
    echo "Written by \`make bench\` (\`bench/run.sh full\`). Every figure is the median of $REPS runs"
    echo "made in the same run on the same disk; ratios compare batpak with the raw file and with"
    echo "the best of SQLite, LMDB and RocksDB from that run. Throughputs (ev/s): higher is better;"
    echo "everything else: lower is better. The workloads and how each store maps them are"
    echo "described in \`bench/README.md\`."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); the run took ${secs} s"
    echo "- Machine: $(uname -srm); $(nproc) cores; $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo);"
    echo "  store directory on $(df -T "$(dirname "$DIR")" | awk 'NR == 2 { print $2 }') ($(df "$(dirname "$DIR")" | awk 'NR == 2 { print $1 }'))"
    echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- Compiler: $(cc --version | head -1); CMake build type RelWithDebInfo (-O2 -g)"
    echo "- Versions:"
    awk -F'\t' '$1 == "V" { print "  - " $2 ": " $3 }' "$OUT/results.tsv" | sort -u
    echo "- Command: \`make bench\` (builds \`batpak-bench\`, then \`bench/run.sh full\`), which runs"
    echo "  each of these for B in $BACKENDS, $REPS times (the open workloads repeat inside):"
    echo
    sort -u "$OUT/commands.txt" | sed 's/^/      /'
    echo
    echo "## Performance targets"
    echo
    cat "$OUT/targets.md"
    echo
    echo "## All figures"
    echo
    cat "$OUT/tables.md"
    if [ -f bench/NOTES.md ]; then echo; cat bench/NOTES.md; fi
  } >bench/RESULTS.md
  echo "bench: wrote bench/RESULTS.md" >&2
fi
