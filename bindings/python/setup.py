"""Build hooks of the batpak package (pyproject.toml has its metadata).

The package is the ctypes binding (batpak/, pure Python) plus the shared library it loads,
built here from the repository this directory sits in (two levels up): CMake configures a
library-only build (no tests, benchmark, fuzz targets, examples or NATS: doc/BUILD.md) under
build/cmake/ and its libbatpak.so.1 is copied to batpak/_lib/ in the build. With
BATPAK_PREBUILT_LIB=PATH that file is taken instead (nothing is compiled). The wheel is tagged
py3-none-<platform>: any Python 3, this machine's architecture. At run time the library needs
the runtime packages of msgpack-c, libsodium, jansson and zlib (Debian: libmsgpackc2,
libsodium23, libjansson4, zlib1g).
"""
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
HEADER = os.path.join(ROOT, "include", "batpak", "common.h")


def _fail(msg):
    sys.stderr.write("batpak setup: " + msg + "\n")
    raise SystemExit(1)


def _version():
    try:
        with open(HEADER, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        _fail(f"cannot read {HEADER} ({e}): build the package from a batpak source tree "
              "(pip install ./bindings/python)")
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(r"^#define BP_VERSION_%s +([0-9]+)" % part, text, re.M)
        if not m:
            _fail(f"{HEADER} has no BP_VERSION_{part}")
        parts.append(m.group(1))
    return ".".join(parts)


def _run(cmd):
    sys.stderr.write("batpak setup: " + " ".join(cmd) + "\n")
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError:
        _fail(f"{cmd[0]} is not installed: the package builds libbatpak with CMake and a C "
              "compiler (Debian: scripts/install-deps.sh build, or apt-get install "
              "build-essential cmake pkg-config libmsgpack-dev librust-blake3-dev "
              "libjansson-dev libsodium-dev zlib1g-dev)")
    except subprocess.CalledProcessError as e:
        _fail(f"{' '.join(cmd)} failed (exit {e.returncode}): see its output above")


def _build_library():
    prebuilt = os.environ.get("BATPAK_PREBUILT_LIB")
    if prebuilt:
        if not os.path.isfile(prebuilt):
            _fail(f"BATPAK_PREBUILT_LIB={prebuilt!r} is not a file")
        return prebuilt
    bdir = os.path.join(HERE, "build", "cmake")
    _run(["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release",
          "-DBATPAK_BUILD_TESTS=OFF", "-DBATPAK_BUILD_BENCH=OFF", "-DBATPAK_BUILD_FUZZ=OFF",
          "-DBATPAK_BUILD_EXAMPLES=OFF", "-DBATPAK_WITH_NATS=OFF", "-DBATPAK_WITH_UI=OFF"])
    _run(["cmake", "--build", bdir, "--target", "batpak", "-j", str(os.cpu_count() or 2)])
    lib = os.path.join(bdir, "libbatpak.so.1")
    if not os.path.exists(lib):
        _fail(f"the build did not make {lib}")
    return os.path.realpath(lib)


class BuildPy(build_py):
    """The Python files, and the library beside them."""

    def run(self):
        super().run()
        lib = _build_library()
        dest = os.path.join(self.build_lib, "batpak", "_lib")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(lib, os.path.join(dest, "libbatpak.so.1"))


cmdclass = {"build_py": BuildPy}
try:
    from wheel.bdist_wheel import bdist_wheel

    class BdistWheel(bdist_wheel):
        """Not pure (it carries a shared library), but for any Python 3 (ctypes)."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            return ("py3", "none", super().get_tag()[2])

    cmdclass["bdist_wheel"] = BdistWheel
except ImportError:  # (no wheel package: pip installs without one)
    pass

setup(version=_version(), cmdclass=cmdclass)
