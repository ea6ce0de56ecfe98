import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# Run from a source tree without PYTHONPATH: the package is one directory up.
sys.path.insert(0, os.path.dirname(HERE))

import batpak  # noqa: E402  (fails with a clear ImportError when libbatpak is not found)

APP = batpak.kind(1, 1)
APP2 = batpak.kind(1, 2)
OTHER_CAT = batpak.kind(2, 7)


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "store")


@pytest.fixture
def store(store_path):
    s = batpak.Store(store_path, no_open_event=True)
    yield s
    s.close()


def mp_str(s: str) -> bytes:
    """MessagePack of a short string (fixstr / str8), enough for the tests."""
    b = s.encode()
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    assert len(b) < 256
    return bytes([0xD9, len(b)]) + b


def mp_map(d: dict) -> bytes:
    """MessagePack of a small map of str -> (small non-negative int | str | bool | None)."""
    assert len(d) < 16
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        out += mp_str(k)
        if v is None:
            out += b"\xc0"
        elif v is True:
            out += b"\xc3"
        elif v is False:
            out += b"\xc2"
        elif isinstance(v, int):
            assert 0 <= v < 128
            out += bytes([v])
        else:
            out += mp_str(v)
    return out
