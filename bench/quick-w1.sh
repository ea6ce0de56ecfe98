#!/usr/bin/env bash
# A first quick run of the shared peerbench W1-W3 workload: this library next to
# the raw append-only file (and, with PEERS=1, SQLite/LMDB/RocksDB), same run.
# Usage: bench/quick-w1.sh [N]   (from the project root; needs ../shared/peerbench)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
PB=../shared/peerbench
OUT=build/peerbench
DATA=${PEERBENCH_DIR:-/var/tmp/batpak-peerbench}
[ -d "$PB" ] || { echo "quick-w1: $PB not found" >&2; exit 1; }
BATPAK_DEPS_BENCH=1 bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target batpak_static >/dev/null
mkdir -p "$OUT" "$DATA"
CF="-O2 -g -std=c11 -Wno-unused-parameter"
cc $CF -c -o "$OUT/harness.o" "$PB/harness.c"
cc $CF -c -o "$OUT/raw.o" "$PB/raw.c"
cc $CF -I"$PB" -Iinclude -c -o "$OUT/batpak.o" bench/peerbench_batpak.c
cc -o "$OUT/bench_raw" "$OUT/harness.o" "$OUT/raw.o" -lz
cc -o "$OUT/bench_batpak" "$OUT/harness.o" "$OUT/batpak.o" build/libbatpak.a -lmsgpackc -lz -lpthread
BACKENDS="raw batpak"
if [ "${PEERS:-0}" = 1 ]; then
  for p in sqlite lmdb rocksdb; do cc $CF -c -o "$OUT/$p.o" "$PB/$p.c"; done
  cc -o "$OUT/bench_sqlite" "$OUT/harness.o" "$OUT/sqlite.o" -lsqlite3
  cc -o "$OUT/bench_lmdb" "$OUT/harness.o" "$OUT/lmdb.o" -llmdb
  cc -o "$OUT/bench_rocksdb" "$OUT/harness.o" "$OUT/rocksdb.o" -lrocksdb
  BACKENDS="raw batpak sqlite lmdb rocksdb"
fi
for rep in 1 2 3; do
  for b in $BACKENDS; do
    rm -rf "${DATA:?}/$b"; mkdir -p "$DATA/$b"
    "$OUT/bench_$b" --mode nosync --n "$N" --payload 100 --entities 1000 --dir "$DATA/$b" --reads
    rm -rf "${DATA:?}/$b"; mkdir -p "$DATA/$b"
    "$OUT/bench_$b" --mode group --n "$N" --payload 100 --entities 1000 --dir "$DATA/$b"
    rm -rf "${DATA:?}/$b"; mkdir -p "$DATA/$b"
    "$OUT/bench_$b" --mode sync --n 2000 --payload 100 --entities 1000 --dir "$DATA/$b"
  done
done | tee "$OUT/results.tsv" | grep -E '^R' | awk -F'\t' '
  { k=$2"\t"$3"\t"$4; v[k]=v[k]" "$5; u[k]=$6 }
  END { for (k in v) { n=split(v[k],a," ");
          for (i=2;i<=n;i++) { x=a[i]+0; j=i-1; while (j>0 && a[j]+0>x) { a[j+1]=a[j]; j-- } a[j+1]=x }
          printf "%s\t%s\t%s\n", k, a[int((n+1)/2)], u[k] } }' \
  | sort | grep -E 'append_ev_s|get_id_us_p50|entity_read_us_p50|reopen_warm_ms|disk_bytes_per_event|scan_ev_s' \
  | tee "$OUT/medians.tsv"
# One line per figure: every backend's median and batpak as a ratio to the raw file.
echo
printf '%-28s' mode/figure; for b in $BACKENDS; do printf '%12s' "$b"; done; printf '%14s\n' batpak/raw
awk -F'\t' -v backends="$BACKENDS" '
  { val[$2"\t"$3, $1] = $4; unit[$2"\t"$3] = $5; keys[$2"\t"$3] = 1 }
  END {
    nb = split(backends, b, " ")
    for (k in keys) {
      split(k, m, "\t"); printf "%-28s", m[1] "/" m[2]
      for (i = 1; i <= nb; i++) printf "%12.4g", val[k, b[i]]
      r = val[k, "raw"] + 0
      if (r > 0) printf "%13.2fx", val[k, "batpak"] / r; else printf "%14s", "-"
      printf "  %s\n", unit[k]
    }
  }' "$OUT/medians.tsv" | sort
