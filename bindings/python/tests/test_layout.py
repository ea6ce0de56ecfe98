"""The ctypes mirrors in batpak/_ffi.py against the C headers, field by field.

A C program (tests/layout.c) is compiled against include/ and prints sizeof, alignof and
every field's offset and size; each must equal the ctypes Structure's. The compiler is
$BATPAK_CC (CMake passes its C compiler: then a missing compiler is a failure), else cc.
"""
import ctypes
import json
import os
import shutil
import subprocess

import pytest

from batpak import _ffi

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.environ.get("BATPAK_INCLUDE") or os.path.join(HERE, "..", "..", "..", "include")


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    cc = os.environ.get("BATPAK_CC")
    if not cc:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            pytest.skip("no C compiler (set BATPAK_CC) to check the struct layouts")
    assert os.path.isfile(os.path.join(INCLUDE, "batpak", "batpak.h")), INCLUDE
    exe = str(tmp_path_factory.mktemp("layout") / "layout")
    r = subprocess.run([cc, "-std=c11", "-I", INCLUDE, os.path.join(HERE, "layout.c"), "-o",
                        exe], capture_output=True, text=True)
    assert r.returncode == 0, f"compiling layout.c failed:\n{r.stderr}"
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("cname", sorted(_ffi.STRUCTS))
def test_struct_layout(c_layout, cname):
    py = _ffi.STRUCTS[cname]
    c = c_layout["structs"][cname]
    py_fields = [f[0] for f in py._fields_]
    assert py_fields == list(c["fields"]), f"{cname}: fields or their order differ"
    for name in py_fields:
        desc = getattr(py, name)
        assert [desc.offset, desc.size] == c["fields"][name], f"{cname}.{name}"
    assert ctypes.sizeof(py) == c["sizeof"], cname
    assert ctypes.alignment(py) == c["alignof"], cname


def test_every_mirrored_struct_is_checked(c_layout):
    assert sorted(c_layout["structs"]) == sorted(_ffi.STRUCTS)


def test_macros_match_headers(c_layout):
    m = c_layout["macros"]
    for name, value in _ffi.MACROS.items():
        assert m[name] == value, name
    assert m["sizeof(bp_status)"] == ctypes.sizeof(_ffi.c_enum)
    assert m["sizeof(bp_durability_mode)"] == ctypes.sizeof(_ffi.c_enum)
    assert m["sizeof(bool)"] == ctypes.sizeof(ctypes.c_bool)
    assert m["sizeof(size_t)"] == ctypes.sizeof(ctypes.c_size_t)
    assert m["sizeof(unsigned)"] == ctypes.sizeof(ctypes.c_uint)


def test_library_version_matches_headers(c_layout):
    major, minor = c_layout["macros"]["BP_VERSION_MAJOR"], c_layout["macros"]["BP_VERSION_MINOR"]
    assert _ffi.LIBRARY_VERSION.split(".")[:2] == [str(major), str(minor)]


# The value types that never grow (doc/API.md rule 6); every other struct starts with
# struct_size, and its mirror sets it when made.
FROZEN = {"bp_id", "bp_hash", "bp_durability", "bp_batch_item", "bp_event", "bp_delivery"}


@pytest.mark.parametrize("cname", sorted(set(_ffi.STRUCTS) - FROZEN))
def test_growable_structs_carry_their_size(c_layout, cname):
    assert list(c_layout["structs"][cname]["fields"])[0] == "struct_size", cname
    py = _ffi.STRUCTS[cname]
    assert py().struct_size == c_layout["structs"][cname]["sizeof"], cname
