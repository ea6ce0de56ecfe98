#!/usr/bin/env bash
# Install the Debian packages batpak needs (README "Dependencies"): `install-deps.sh build`
# what the library and the CLI need to build and run (make demo), `install-deps.sh` (or
# `test`) that and what the tests, the benchmark and the docs need (make test, make bench).
# Idempotent: installs only what is missing. Works as root, or via sudo.
set -euo pipefail

# the library and the CLI (libnats-dev: replication, `batpak relay` and `follow`;
# libmicrohttpd-dev: the web page of `batpak ui`)
PKGS=(build-essential cmake pkg-config zlib1g-dev libmsgpack-dev librust-blake3-dev
      libjansson-dev libsodium-dev libnats-dev libmicrohttpd-dev)
case "${1:-test}" in
  build) ;;
  test) PKGS+=(
      b3sum                     # the test vectors' BLAKE3 checked against an independent tool
      libsqlite3-dev liblmdb-dev librocksdb-dev # the benchmark's peers (bench/; CTest: a quick pass)
      clang libclang-rt-14-dev  # clang + compiler-rt: the libFuzzer targets (make test-fuzz)
      valgrind                  # memcheck over the CLI tests (CTest cli_valgrind)
      curl                      # the HTTP requests of CTest ui (batpak ui)
      chromium                  # CTest ui_browser: the page of batpak ui in a headless browser
      python3 python3-pytest    # the Python binding (bindings/python), its tests, cli_golden
      python3-venv python3-pip python3-setuptools python3-wheel # its package (make wheel)
      doxygen groff-base        # the API reference (test apidoc) and the man page check
      abigail-tools             # abidw/abidiff: the ABI against abi/ (tests abi, abi_selftest)
      nats-server) ;;           # replication through NATS JetStream: its tests
  *) echo "usage: install-deps.sh [build|test]" >&2; exit 2 ;;
esac
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
