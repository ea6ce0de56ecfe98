# Thin wrapper over CMake for the README's two commands.
#   make demo   install what the library and CLI need, build them, run `batpak demo` on
#               ./demo-data
#   make test   install deps, build (-Werror), run CTest; again under ASan+UBSan; TSan on threaded
#               tests; the fuzz targets under libFuzzer for FUZZ_SECONDS each
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps deps-build build-demo test-libonly wheel doctor apidoc abi-baseline build demo test test-asan test-tsan test-fuzz fuzz fuzz-seeds torture bench bench-quick coverage mutants install clean format

all: build

deps:
	@bash scripts/install-deps.sh test

# only what the library and the CLI need (make demo)
deps-build:
	@bash scripts/install-deps.sh build

# What is installed and what is missing, with the apt-get line that fixes it (installs nothing).
doctor:
	@bash scripts/doctor

# The API reference from the public headers (Doxygen): build/apidoc/html/index.html
apidoc: deps
	mkdir -p build/apidoc
	BP_APIDOC_OUT=build/apidoc BP_APIDOC_VERSION=$$(sed -n 's/^#define BP_VERSION_STRING "\(.*\)"/\1/p' include/batpak/common.h) doxygen doc/Doxyfile
	@echo "API reference: build/apidoc/html/index.html"

# Regenerate the committed ABI baseline (abi/libbatpak.abi, abi/VERSION) from build/'s library:
# after additions (with BP_VERSION_MINOR bumped) or a deliberate break (BP_VERSION_MAJOR).
abi-baseline: build
	cmake --build build --target abi-baseline

# everything: the library, the CLI, the tests, the examples, the fuzz drivers, the benchmark
BP_ALL = -DBATPAK_BUILD_TESTS=ON -DBATPAK_BUILD_BENCH=ON -DBATPAK_BUILD_FUZZ=ON -DBATPAK_BUILD_EXAMPLES=ON
# the library and the CLI alone (doc/BUILD.md)
BP_LIB_ONLY = -DBATPAK_BUILD_TESTS=OFF -DBATPAK_BUILD_BENCH=OFF -DBATPAK_BUILD_FUZZ=OFF -DBATPAK_BUILD_EXAMPLES=OFF

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATPAK_WERROR=ON $(BP_ALL) $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

# make demo builds the library and the CLI only (a later make test builds the rest in build/)
build-demo: deps-build
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(BP_LIB_ONLY) $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS) --target batpak batpak_cli batpak_completion

demo: build-demo
	./build/batpak --dir ./demo-data demo

test: build
	cd build && ctest --output-on-failure -j $(JOBS) -LE torture
	$(MAKE) test-asan
	$(MAKE) test-tsan
	$(MAKE) test-fuzz
	$(MAKE) test-libonly

# The library-only configuration from a clean tree, without NATS: it builds the library and
# the CLI and nothing else, and the CLI runs.
test-libonly: deps
	rm -rf build-lib
	cmake -S . -B build-lib -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATPAK_WERROR=ON $(BP_LIB_ONLY) -DBATPAK_WITH_NATS=OFF -DBATPAK_WITH_UI=OFF
	cmake --build build-lib -j $(JOBS)
	bash scripts/libonly-check.sh build-lib

test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBATPAK_WERROR=ON -DBATPAK_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -LE 'nosan|torture'

test-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DBATPAK_WERROR=ON -DBATPAK_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure --no-tests=error -j $(JOBS) -L threads

# libFuzzer (clang, ASan+UBSan): each fuzz/ target for FUZZ_SECONDS, from its seed corpus
# (new inputs it finds stay in build-fuzz/work-*; a crash input is written to build-fuzz/).
FUZZ_SECONDS ?= 10
test-fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATPAK_WERROR=ON -DBATPAK_FUZZ=ON -DBATPAK_SANITIZE=address,undefined -DBATPAK_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-fuzz -j $(JOBS)
	cd build-fuzz && ctest --output-on-failure -L fuzz

# long crash/fault/fuzz runs (not part of `make test`); `make fuzz` runs each fuzz target for
# FUZZ_LONG seconds (1800)
torture: build
	cd build && ctest --output-on-failure -L torture

FUZZ_LONG ?= 1800
fuzz:
	$(MAKE) test-fuzz FUZZ_SECONDS=$(FUZZ_LONG)

# Regenerate the seed corpora (fuzz/corpus/) from a store built by fuzz/mkseeds.c.
fuzz-seeds: build
	./build/fuzz_mkseeds fuzz/corpus

# The benchmark suite (bench/run.sh): batpak, the raw-file ceiling, SQLite, LMDB and RocksDB
# in one run, medians of 3; writes bench/RESULTS.md (< 10 minutes on 2 cores).
bench: build
	bash bench/run.sh full

# The same suite at tiny sizes (< 1 minute): proves it runs; CTest runs it too (bench_quick).
bench-quick: build
	bash bench/run.sh quick

# Line and branch coverage of src/ by the default test run (gcovr): build-cov/coverage.txt.
coverage:
	BATPAK_DEPS_COVERAGE=1 bash scripts/install-deps.sh
	cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="--coverage -fprofile-update=atomic" -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage
	cmake --build build-cov -j $(JOBS)
	find build-cov -name '*.gcda' -delete
	cd build-cov && ctest -j $(JOBS) -LE 'torture|bench' -E '^install$$'
	gcovr -r . --object-directory build-cov --filter 'src/' --exclude-unreachable-branches --print-summary --txt build-cov/coverage.txt
	gcovr -r . --object-directory build-cov --filter 'src/' --exclude-unreachable-branches --branches --txt build-cov/coverage-branches.txt
	@echo "per file: build-cov/coverage.txt"

# Mutation smoke test of the critical seams (scripts/mutants.txt): >= 90 % must be killed.
mutants: deps
	bash scripts/mutate.sh

install: build
	cmake --install build

# The Python package as a wheel that carries libbatpak (bindings/python/setup.py): dist/
PYTHON ?= /usr/bin/python3
wheel: deps
	$(PYTHON) -m pip wheel --no-build-isolation --no-index --no-deps -w dist ./bindings/python
	@ls dist/batpak-*.whl

format:
	clang-format -i include/batpak/*.h src/*/*.c src/*/*.h tests/*.c tests/*.h

clean:
	rm -rf build build-asan build-tsan build-fuzz build-cov build-mut build-lib dist bindings/python/build bindings/python/batpak.egg-info
