#!/usr/bin/env bash
# CTest python_package: the binding as a new user installs it. In a fresh virtualenv, offline,
# `pip install --no-build-isolation ./bindings/python` builds libbatpak into the package; the
# README's example then runs from a fresh shell with no environment variable (no BATPAK_LIB,
# no PYTHONPATH). Then the wheel `make wheel` builds: it carries the library, installs into a
# second virtualenv without system packages, and runs the example too.
# Usage: package_test.sh SOURCE_DIR SCRATCH [PYTHON] (default Debian's /usr/bin/python3)
set -euo pipefail
SRC=${1:?usage: package_test.sh SOURCE_DIR SCRATCH [PYTHON]}
S=${2:?usage: package_test.sh SOURCE_DIR SCRATCH [PYTHON]}
PY=${3:-/usr/bin/python3}
fail() { echo "package_test: $*" >&2; exit 1; }
"$PY" -c 'import venv, setuptools, wheel' 2>/dev/null ||
  fail "python3-venv, python3-setuptools and python3-wheel are needed (scripts/install-deps.sh)"
rm -rf "$S"
mkdir -p "$S"
clean_env() { env -i PATH=/usr/bin:/bin HOME="$S" LANG=C.UTF-8 "$@"; }

# 1. pip install into a virtualenv (system site packages: Debian's setuptools and wheel)
"$PY" -m venv --system-site-packages "$S/venv"
"$S/venv/bin/pip" install --no-build-isolation --no-index --no-deps "$SRC/bindings/python" \
  >"$S/pip.log" 2>&1 || { cat "$S/pip.log" >&2; fail "pip install ./bindings/python failed"; }
cd "$S" # (not the source tree: the installed package is the one imported)
out=$(clean_env "$S/venv/bin/python" "$SRC/bindings/python/examples/quickstart.py" "$S/data1") ||
  fail "the example failed in a fresh shell: $out"
echo "$out" | grep -q "^balance 15$" || fail "unexpected output: $out"
echo "$out" | grep -q "after refresh 3 deposits" || fail "unexpected output: $out"
where=$(clean_env "$S/venv/bin/python" -c 'import batpak, os; print(batpak._ffi._BUNDLED, batpak.__version__)')
case "$where" in "$S/venv/"*) ;; *) fail "the package did not carry its library: $where" ;; esac

# 2. the wheel: built once more from the same tree (its CMake build is reused)
"$PY" -m pip wheel --no-build-isolation --no-index --no-deps -w "$S/dist" \
  "$SRC/bindings/python" >"$S/wheel.log" 2>&1 || { cat "$S/wheel.log" >&2; fail "pip wheel failed"; }
whl=$(ls "$S"/dist/batpak-*-py3-none-*.whl) || fail "no py3-none wheel in $S/dist"
files=$("$PY" -m zipfile -l "$whl")
echo "$files" | grep -q "batpak/_lib/libbatpak.so.1" || fail "$whl has no library: $files"
"$PY" -m venv "$S/venv2" # (no system site packages: the runtime needs nothing but the wheel)
"$S/venv2/bin/pip" install --no-index --no-deps "$whl" >"$S/pip2.log" 2>&1 ||
  { cat "$S/pip2.log" >&2; fail "installing $whl failed"; }
out=$(clean_env "$S/venv2/bin/python" "$SRC/bindings/python/examples/quickstart.py" "$S/data2") ||
  fail "the example failed from the wheel: $out"
echo "$out" | grep -q "^balance 15$" || fail "unexpected output from the wheel: $out"
echo "package_test: pip install and the wheel both run the example with no environment variable"
