"""Unsigned LEB128 varints: the one Python reader and writer of every chansim format.

A value is written 7 bits per byte, least significant group first, the high bit of a
byte set when more bytes follow (``docs/format.md``). The one overflow rule, the same
as the C++ reader (``csrc/entropy/format.cpp``, ``get_varint``): a varint holds a value
below 2**64, so it has at most 10 bytes and its 10th byte is 0 or 1. Anything else —
an 11th byte, a 10th byte above 1, a missing byte — raises :class:`chansim.FormatError`.

Imports NumPy-free and PyTorch-free: the container, PFR messages and file sniffing use it.
"""

from __future__ import annotations

from .errors import FormatError

__all__ = ["MAX_BYTES", "MAX_VALUE", "encode", "put", "read"]

#: Largest value a varint holds, and the most bytes it takes.
MAX_VALUE = (1 << 64) - 1
MAX_BYTES = 10


def put(out: bytearray, value: int) -> None:
    """Append ``value`` (an int in [0, 2**64)) to ``out``; ValueError outside that range."""
    if not isinstance(value, int) or isinstance(value, bool):
        value = int(value)
    if value < 0 or value > MAX_VALUE:
        raise ValueError(f"varint out of range: {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def encode(value: int) -> bytes:
    """``value`` as a varint."""
    out = bytearray()
    put(out, value)
    return bytes(out)


def read(data, pos: int, what: str = "varint", limit: int = MAX_VALUE, context: str = "chansim data") -> tuple:
    """(value, position after it) of the varint at ``data[pos]``.

    Raises FormatError naming ``what`` (the field) and ``context`` (the kind of data)
    when the varint is cut short ("truncated …"), longer than 64 bits ("… overflows 64
    bits") or above ``limit`` ("… exceeds its limit").
    """
    value, shift, n = 0, 0, len(data)
    while True:
        if pos >= n:
            raise FormatError(f"truncated {context}: {what} needs more bytes at offset {pos}, 0 left")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise FormatError(f"corrupted {context}: {what} overflows 64 bits")
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    if value > limit:
        raise FormatError(f"corrupted {context}: {what} = {value} exceeds its limit {limit}")
    return value, pos
