#!/usr/bin/env bash
# cmake --install into a scratch prefix, then build examples/quickstart.c against
# the installed copy twice: with pkg-config, and with find_package(batpak).
set -euo pipefail
BUILD=$1; SRC=$2; WORK=$3
rm -rf "$WORK"; mkdir -p "$WORK"
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
P="$WORK/prefix"
test -f "$P/include/batpak/batpak.h"
LIBDIR=$(dirname "$(find "$P" -name 'batpak.pc' | head -1)")/..
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
# SONAME libbatpak.so.<major>, the major version of the installed headers (doc/API.md rule 10)
major=$(sed -n 's/^#define BP_VERSION_MAJOR \([0-9]*\)$/\1/p' "$P/include/batpak/common.h")
soname=$(readelf -d "$LIBDIR/libbatpak.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
if [ -z "$major" ] || [ "$soname" != "libbatpak.so.$major" ]; then
    echo "install test: SONAME '$soname', want libbatpak.so.$major" >&2
    exit 1
fi
test -e "$LIBDIR/$soname"
# shared library through pkg-config
cc -std=c11 "$SRC/examples/quickstart.c" $(pkg-config --cflags --libs batpak) -Wl,-rpath,"$LIBDIR" -o "$WORK/qs_pc"
"$WORK/qs_pc" "$WORK/data1" | grep -q "durable yes"
# static library through batpak-static.pc, as README says, with the .so installed next to
# it: the program must not need libbatpak.so (no NEEDED entry; it runs with the .so gone)
test -e "$LIBDIR/libbatpak.so"
for how in "" --static; do
    cc -std=c11 "$SRC/examples/quickstart.c" -o "$WORK/qs_static" \
       $(pkg-config $how --cflags --libs batpak-static)
    if readelf -d "$WORK/qs_static" | grep -q 'NEEDED.*libbatpak'; then
        echo "install test: pkg-config $how batpak-static links libbatpak.so" >&2
        exit 1
    fi
    rm -rf "$WORK/data2"
    "$WORK/qs_static" "$WORK/data2" | grep -q "durable yes"
done
mkdir -p "$WORK/so-away"
mv "$LIBDIR"/libbatpak.so* "$WORK/so-away/"
rm -rf "$WORK/data2"
"$WORK/qs_static" "$WORK/data2" | grep -q "durable yes"
mv "$WORK/so-away"/* "$LIBDIR/"
# CMake package config
mkdir -p "$WORK/cm"
cat > "$WORK/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(batpak REQUIRED)
add_executable(qs $SRC/examples/quickstart.c)
target_link_libraries(qs batpak::batpak)
CM
cmake -S "$WORK/cm" -B "$WORK/cm/build" -DCMAKE_PREFIX_PATH="$P" >/dev/null
cmake --build "$WORK/cm/build" >/dev/null
"$WORK/cm/build/qs" "$WORK/data3" | grep -q "durable yes"
# the README's example, as a new user would paste it, against the installed copy
awk '/^## Example$/ {f = 1} f && /^```c$/ {g = 1; next} g && /^```$/ {exit} g' "$SRC/README.md" \
    > "$WORK/readme.c"
grep -q 'bp_store_open' "$WORK/readme.c"
cc -std=c11 -Wall -Wextra -Werror "$WORK/readme.c" $(pkg-config --cflags --libs batpak) \
   -Wl,-rpath,"$LIBDIR" -o "$WORK/readme"
(cd "$WORK" && ./readme && ./readme) | grep -q "clock 2, 6 payload bytes"
# the man page and the bash completion are installed, and the completion is what the tool prints
test -f "$P/share/man/man1/batpak.1"
cmp "$P/share/bash-completion/completions/batpak" <("$P/bin/batpak" completion bash)
# the installed tool finds the installed library by its RUNPATH ($ORIGIN/../lib), not the tree
# shellcheck disable=SC2016 # a literal $ORIGIN
readelf -d "$P/bin/batpak" | grep -q 'RUNPATH.*\$ORIGIN' ||
    { echo "install test: the installed batpak has no \$ORIGIN RUNPATH" >&2; exit 1; }
"$P/bin/batpak" --version | grep -q "libbatpak"
# the CLI built again from its sources against the installed prefix. Every file but cmd_dump.c
# sees only the installed public headers and cli.h (copied alone: src/ is not on their path).
# `batpak dump` reads a store's files without opening it, so cmd_dump.c needs the format
# layer, which is internal and not installed: it compiles with src/ on the path and links
# the tree's libbp_fmt.a (the format decoders and core/error.c, no public symbol). So this
# proves the tool needs nothing of the installed library beyond its API, and nothing of the
# tree beyond bp_fmt.
mkdir -p "$WORK/cli/inc/cli"
cp "$SRC"/src/cli/*.h "$WORK/cli/inc/cli/" # (cli.h, and ui.h: the ui is left out here)
CLI_CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra $(pkg-config --cflags batpak jansson msgpack)"
for f in "$SRC"/src/cli/*.c; do
    inc="-I$WORK/cli/inc"
    [ "$(basename "$f")" = cmd_dump.c ] && inc="$inc -I$SRC/src"
    # shellcheck disable=SC2086
    cc $CLI_CFLAGS -I"$P/include" $inc -c "$f" -o "$WORK/cli/$(basename "$f" .c).o"
done
# shellcheck disable=SC2046
cc "$WORK"/cli/*.o "$BUILD/libbp_fmt.a" $(pkg-config --libs batpak jansson msgpack zlib) -lpthread \
   -Wl,-rpath,"$LIBDIR" -o "$WORK/cli/batpak"
readelf -d "$WORK/cli/batpak" | grep -q "NEEDED.*libbatpak.so" ||
    { echo "install test: the rebuilt CLI does not link libbatpak.so" >&2; exit 1; }
cmp <("$WORK/cli/batpak" --version) <("$P/bin/batpak" --version)
C="$WORK/cli/batpak --dir $WORK/cli/data"
$C init >/dev/null
$C append acct:1 bank 0x1001 '{"n":1}' >/dev/null
$C dump | tail -n 1 | grep -q '"frames":1,"problems":0}'
# a library error message (set in libbatpak.so, read with its bp_last_error) reaches the tool
mkdir -p "$WORK/cli/nostore"
if "$WORK/cli/batpak" --dir "$WORK/cli/nostore" query 2>"$WORK/cli/err"; then
    echo "install test: query on an empty directory succeeded" >&2; exit 1
fi
grep -q 'nostore: no batpak store here (STORE file missing)' "$WORK/cli/err" ||
    { echo "install test: no library message: $(cat "$WORK/cli/err")" >&2; exit 1; }
echo "install test: ok"
