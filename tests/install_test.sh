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
echo "install test: ok"
