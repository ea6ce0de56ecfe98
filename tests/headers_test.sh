#!/usr/bin/env bash
# headers_test.sh INCLUDE_DIR LIB_DIR SCRATCH — the public headers compile warning-free on
# their own, as C11 and as C++11, with GCC and Clang (-Wall -Wextra -Werror -pedantic), and a
# C++ program linked with libbatpak opens a store, appends, reads and closes it (the headers'
# extern "C" is right). A compiler that is not installed is skipped with a note; GCC's are
# required.
set -u
inc=$1
lib=$2
tmp=$3
rm -rf "$tmp" && mkdir -p "$tmp" || exit 1
fail=0
compilers=()
for cc in gcc clang g++ clang++; do
  if command -v "$cc" >/dev/null 2>&1; then
    compilers+=("$cc")
  elif [ "$cc" = gcc ] || [ "$cc" = g++ ]; then
    echo "headers_test: $cc is missing (Debian package build-essential)" >&2
    exit 1
  else
    echo "headers_test: $cc is not installed: skipped" >&2
  fi
done
n=0
for h in "$inc"/batpak/*.h; do
  b=$(basename "$h")
  for cc in "${compilers[@]}"; do
    case $cc in
      *++) src="$tmp/one.cpp"; std=-std=c++11 ;;
      *) src="$tmp/one.c"; std=-std=c11 ;;
    esac
    printf '#include <batpak/%s>\nint main(void) { return 0; }\n' "$b" >"$src"
    if ! out=$("$cc" $std -Wall -Wextra -Werror -pedantic -I"$inc" -c "$src" -o "$tmp/one.o" 2>&1); then
      echo "headers_test: batpak/$b does not compile alone with $cc $std:" >&2
      echo "$out" >&2
      fail=1
    fi
    n=$((n + 1))
  done
done

# Every BP_X_INIT macro of the headers: it must compile warning-free (-Wextra warns about a
# missing field initializer) in C and C++, and give struct_size == sizeof(bp_x).
{
  for m in $(grep -ho '#define BP_[A-Z_]*_INIT\b' "$inc"/batpak/*.h | awk '{print $2}'); do
    t=$(echo "${m%_INIT}" | tr 'A-Z' 'a-z')
    echo "{ $t v = $m; if (v.struct_size != sizeof v) return fail(\"$m\"); }"
  done
} >"$tmp/inits.inc"
if [ "$(wc -l <"$tmp/inits.inc")" -lt 20 ]; then
  echo "headers_test: found only $(wc -l <"$tmp/inits.inc") BP_X_INIT macros" >&2
  fail=1
fi
cat >"$tmp/inits.c" <<'C'
#include <batpak/batpak.h>
#include <stdio.h>
static int fail(const char *m) {
    fprintf(stderr, "%s: struct_size is not sizeof\n", m);
    return 1;
}
int main(void) {
#include "inits.inc"
    return 0;
}
C
cp "$tmp/inits.c" "$tmp/inits.cpp"
for cc in "gcc -std=c11 -x c" "clang -std=c11 -x c" "g++ -std=c++11 -x c++" "clang++ -std=c++11 -x c++"; do
  src="$tmp/inits.c"
  if ! out=$($cc -Wall -Wextra -Werror -I"$inc" -I"$tmp" "$src" -o "$tmp/inits" 2>&1); then
    echo "headers_test: the BP_X_INIT macros do not compile cleanly with $cc:" >&2
    echo "$out" >&2
    fail=1
  elif ! out=$("$tmp/inits" 2>&1); then
    echo "headers_test: $cc: $out" >&2
    fail=1
  fi
done

cat >"$tmp/use.cpp" <<'CPP'
#include <batpak/batpak.h>
#include <cstdio>
#include <cstring>
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    bp_store *s = nullptr;
    if (bp_store_open(&s, argv[1], nullptr) != BP_OK) {
        std::fprintf(stderr, "open: %s\n", bp_last_error());
        return 1;
    }
    bp_receipt r = BP_RECEIPT_INIT;
    if (bp_append(s, &r, "cpp:1", "cpp", 0x1001, "hi", 2) != BP_OK) return 1;
    bp_event *ev = nullptr;
    if (bp_get(s, &ev, &r.event_id) != BP_OK || ev->payload_len != 2 ||
        std::memcmp(ev->payload, "hi", 2) != 0)
        return 1;
    bp_event_free(ev);
    if (bp_store_close(s) != BP_OK) return 1;
    std::printf("ok %s\n", bp_version());
    return 0;
}
CPP
if ! out=$(g++ -std=c++11 -Wall -Wextra -Werror -I"$inc" "$tmp/use.cpp" -o "$tmp/use" -L"$lib" -lbatpak -Wl,-rpath,"$lib" 2>&1); then
  echo "headers_test: a C++ program does not build against libbatpak:" >&2
  echo "$out" >&2
  fail=1
elif ! out=$("$tmp/use" "$tmp/store" 2>&1) || [ "${out#ok }" = "$out" ]; then
  echo "headers_test: the C++ program failed: $out" >&2
  fail=1
fi
[ $fail = 0 ] && echo "headers_test: $n header compilations and a C++ program: ok"
exit $fail
