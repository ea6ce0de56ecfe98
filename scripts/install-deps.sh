#!/usr/bin/env bash
# Install the Debian packages batpak needs to build and test (README "Dependencies").
# Idempotent: installs only what is missing. Works as root, or via sudo.
set -euo pipefail

# SQLite, LMDB and RocksDB are the benchmark's peers (bench/; CTest runs a quick pass).
PKGS=(build-essential cmake pkg-config zlib1g-dev libmsgpack-dev librust-blake3-dev
      libjansson-dev libsodium-dev b3sum libsqlite3-dev liblmdb-dev librocksdb-dev
      clang libclang-rt-14-dev  # clang + compiler-rt: the libFuzzer targets (make test-fuzz)
      valgrind                  # memcheck over the CLI tests (CTest cli_valgrind)
      python3 python3-pytest    # the Python binding (bindings/python), its tests, cli_golden
      doxygen groff-base        # the API reference (test apidoc) and the man page check
      abigail-tools             # abidw/abidiff: the ABI against abi/ (tests abi, abi_selftest)
      libnats-dev nats-server)  # replication through NATS JetStream and its tests
if [ "${BATPAK_DEPS_COVERAGE:-0}" = 1 ]; then
  PKGS+=(gcovr) # make coverage
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
