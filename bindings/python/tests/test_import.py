"""Loading the library: $BATPAK_LIB, else find_library, else a clear ImportError."""
import ctypes.util
import os
import subprocess
import sys

import pytest

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import(env_lib):
    env = dict(os.environ, PYTHONPATH=PKG, PYTHONDONTWRITEBYTECODE="1")
    env.pop("BATPAK_LIB", None)
    if env_lib is not None:
        env["BATPAK_LIB"] = env_lib
    return subprocess.run([sys.executable, "-c", "import batpak; print(batpak.library_version)"],
                          env=env, capture_output=True, text=True)


def test_batpak_lib_is_used():
    if not os.environ.get("BATPAK_LIB"):
        pytest.skip("BATPAK_LIB is not set")
    r = _import(os.environ["BATPAK_LIB"])
    assert r.returncode == 0, r.stderr
    from batpak import _ffi
    assert r.stdout.strip().startswith("%d.%d." % _ffi.HEADER_VERSION)


def test_bad_batpak_lib_is_a_clear_import_error(tmp_path):
    missing = str(tmp_path / "libnothere.so")
    r = _import(missing)
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert f"cannot load BATPAK_LIB={missing!r}" in r.stderr


def test_no_library_found_is_a_clear_import_error():
    if ctypes.util.find_library("batpak"):
        return  # installed system-wide: nothing to check here
    r = _import(None)
    assert r.returncode != 0
    assert "ImportError: batpak: libbatpak not found" in r.stderr
    assert "pip install ./bindings/python" in r.stderr and "BATPAK_LIB" in r.stderr
