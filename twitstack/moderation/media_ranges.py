"""HTTP byte ranges for served media: parsing `Range`, and the bounded slice to answer.

A browser's `<video preload="metadata">` asks for `bytes=0-` and then for the parts it needs;
answering each with at most `MAX_RANGE_BYTES` keeps one request from reading a 512 MB video
whole (the browser asks again from where the answer stopped). Only one `bytes=` range is
served: browsers never ask media for more, and multipart answers would be unbounded work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RANGE_BYTES = 4 * 1024 * 1024
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class RangeNotSatisfiable(ValueError):
    """The `Range` header cannot be served (416); the message says why."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start`..`end` (inclusive) of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str, size: int, *, limit: int = MAX_RANGE_BYTES) -> ByteRange:
    """The slice to answer `Range: header` with, at most `limit` bytes from its start.

    Raises RangeNotSatisfiable for anything but one well-formed range that overlaps the file.
    """
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        raise RangeNotSatisfiable(
            f"Range: expected one range like bytes=0-1023, found {header[:40]!r}"
        )
    first, last = match.groups()
    if not first and not last:
        raise RangeNotSatisfiable("Range: expected a start or a suffix length, found neither")
    if not first:  # a suffix: the last N bytes
        wanted = int(last)
        if wanted == 0 or size == 0:
            raise RangeNotSatisfiable("Range: the suffix is empty")
        start, end = max(size - wanted, 0), size - 1
    else:
        start = int(first)
        end = size - 1 if not last else min(int(last), size - 1)
        if last and int(last) < start:
            raise RangeNotSatisfiable(f"Range: the end {last} is before the start {start}")
        if start >= size:
            raise RangeNotSatisfiable(f"Range: starts at {start}, the file has {size} bytes")
    return ByteRange(start, min(end, start + limit - 1), size)
