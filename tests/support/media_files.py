"""Small real media files for tests: a valid PNG, a GIF and an MP4-shaped file."""

from __future__ import annotations

import struct
import zlib

MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def png(width: int = 2, height: int = 2, *, seed: int = 0) -> bytes:
    """A valid RGB PNG; `seed` changes the pixels (and so the hash)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(
        b"\x00" + bytes((seed + x + y) % 256 for x in range(width * 3)) for y in range(height)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def gif(*, seed: int = 0) -> bytes:
    """A 1x1 GIF89a."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
        + bytes((seed % 256, 0, 0, 255, 255, 255))
        + b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def mp4(size: int, *, seed: int = 0) -> bytes:
    """`size` bytes starting with an MP4 `ftyp` box (enough for sniffing and chunking)."""
    filler = bytes((seed + i) % 251 for i in range(4096))
    body = (filler * (size // len(filler) + 1))[: max(size - len(MP4_HEAD), 0)]
    return MP4_HEAD + body
