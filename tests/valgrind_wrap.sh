#!/usr/bin/env bash
# Runs the batpak CLI under valgrind memcheck for tests/cli_test.sh (CTest cli_valgrind):
# any memory error or definite leak turns into exit code 99, which the CLI test reports
# as a wrong exit code.
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --track-fds=no "$BATPAK_REAL_BIN" "$@"
