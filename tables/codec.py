"""A compact binary encoding for table values: varints, strings and byte strings.

Table values are written to RocksDB and to the changelog once per touched record per batch,
so their size is the changelog's volume. Integers are zigzag varints (most counters fit a
byte or two), strings and sketches are length-prefixed.
"""

from __future__ import annotations

_SMALL = [bytes([n]) for n in range(128)]


class CodecError(ValueError):
    """A stored value could not be decoded (wrong version or truncated)."""


class Writer:
    """Appends encoded values to a byte buffer."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uint(self, n: int) -> None:
        if n < 128:
            self._parts.append(_SMALL[n])
            return
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        self._parts.append(bytes(out))

    def sint(self, n: int) -> None:
        self.uint((n << 1) ^ (n >> 63) if n < 0 else n << 1)

    def sints(self, values: list[int]) -> None:
        """Several signed ints at once (a record's counters): one buffer, no calls per int."""
        out = bytearray()
        append = out.append
        for n in values:
            z = (n << 1) ^ (n >> 63) if n < 0 else n << 1
            while z >= 0x80:
                append((z & 0x7F) | 0x80)
                z >>= 7
            append(z)
        self._parts.append(bytes(out))

    def blob(self, data: bytes) -> None:
        self.uint(len(data))
        self._parts.append(data)

    def text(self, text: str) -> None:
        self.blob(text.encode())

    def raw(self, data: bytes) -> None:
        """Bytes already encoded (a part copied from another value), as they are."""
        self._parts.append(data)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads values written by `Writer`, in the same order."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def uint(self) -> int:
        data, pos = self._data, self._pos
        try:
            byte = data[pos]
            pos += 1
            if byte < 0x80:
                self._pos = pos
                return byte
            n = byte & 0x7F
            shift = 7
            while True:
                byte = data[pos]
                pos += 1
                n |= (byte & 0x7F) << shift
                if byte < 0x80:
                    self._pos = pos
                    return n
                shift += 7
        except IndexError:
            raise CodecError("truncated value") from None

    def sint(self) -> int:
        z = self.uint()
        return (z >> 1) ^ -(z & 1)

    def blob(self) -> bytes:
        size = self.uint()
        end = self._pos + size
        if end > len(self._data):
            raise CodecError("truncated value")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def text(self) -> str:
        return self.blob().decode()

    @property
    def position(self) -> int:
        return self._pos

    def since(self, start: int) -> bytes:
        """The bytes read from `start` (an earlier `position`) to here."""
        return self._data[start : self._pos]

    def at_end(self) -> bool:
        return self._pos == len(self._data)
