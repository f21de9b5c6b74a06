"""Small real media files for tests: a valid PNG, a GIF, an MP4-shaped file and a decodable
H.264 MP4 (built byte by byte, no encoder needed)."""

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


class _Bits:
    """An RBSP bit writer (Exp-Golomb codes) for the H.264 headers below."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.pending: list[int] = []  # fewer than 8 bits not yet in `out`

    def u(self, count: int, value: int) -> None:
        self.pending += [(value >> (count - 1 - i)) & 1 for i in range(count)]
        while len(self.pending) >= 8:
            self.out.append(int("".join(map(str, self.pending[:8])), 2))
            del self.pending[:8]

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() * 2 - 1, code)

    def align_zero(self) -> None:
        if self.pending:
            self.u(8 - len(self.pending), 0)

    def raw(self, data: bytes) -> None:
        """Whole bytes, written directly (callers align first)."""
        assert not self.pending, "raw bytes must start on a byte boundary"
        self.out += data

    def trailing(self) -> bytes:
        self.u(1, 1)
        self.align_zero()
        return bytes(self.out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation prevention (0x000003 before any 00 00 0x where x <= 3)."""
    out, zeros = bytearray([header]), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _h264_frame(width_mbs: int, height_mbs: int, seed: int, frame: int) -> bytes:
    """One IDR picture of I_PCM macroblocks: raw samples, so no encoder is needed."""
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num
    bits.ue(frame)  # idr_pic_id (differs between consecutive IDR pictures)
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.ue(0)  # slice_qp_delta (se 0 codes as ue 0)
    for mb in range(width_mbs * height_mbs):
        bits.ue(25)  # mb_type I_PCM
        bits.align_zero()
        luma = 16 + (seed * 37 + mb * 53 + frame * 11) % 200  # never 0: PCM forbids it
        bits.raw(bytes([luma]) * 256 + bytes([128]) * 128)
    return _nal(0x65, bits.trailing())


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version_flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version_flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def h264_mp4(width: int = 32, height: int = 32, *, frames: int = 2, seed: int = 0) -> bytes:
    """A small decodable MP4 (H.264 baseline, `frames` IDR pictures at 1 fps, moov first).

    Built byte by byte: each picture is coded as I_PCM macroblocks (raw samples), which every
    H.264 decoder must accept, so tests need neither ffmpeg nor a binary fixture. `width` and
    `height` are multiples of 16.
    """
    if width % 16 or height % 16 or not 1 <= frames <= 100 or width * height > 1920 * 1088:
        raise ValueError("width and height: multiples of 16 up to 1920x1088; frames 1-100")
    sps_bits = _Bits()
    sps_bits.u(8, 66)  # profile_idc: baseline
    sps_bits.u(8, 0xC0)  # constraint_set0/1 flags
    sps_bits.u(8, 30)  # level_idc 3.0
    for value in (0, 0, 2, 1):  # sps id, log2_max_frame_num-4, poc type 2, max ref frames
        sps_bits.ue(value)
    sps_bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    sps_bits.ue(width // 16 - 1)
    sps_bits.ue(height // 16 - 1)
    sps_bits.u(3, 0b110)  # frame_mbs_only, direct_8x8_inference, no cropping
    sps_bits.u(1, 0)  # no VUI
    sps = _nal(0x67, sps_bits.trailing())
    pps_bits = _Bits()
    for value in (0, 0):  # pps id, sps id
        pps_bits.ue(value)
    pps_bits.u(2, 0)  # CAVLC, no bottom_field_pic_order
    for value in (0, 0, 0):  # slice groups - 1, ref idx l0/l1 defaults
        pps_bits.ue(value)
    pps_bits.u(3, 0)  # weighted_pred_flag, weighted_bipred_idc
    for _ in range(3):  # pic_init_qp/qs - 26, chroma_qp_index_offset: se(0)
        pps_bits.ue(0)
    pps_bits.u(3, 0)  # deblocking control, constrained intra, redundant_pic_cnt
    pps = _nal(0x68, pps_bits.trailing())
    samples = [
        struct.pack(">I", len(n)) + n
        for n in (_h264_frame(width // 16, height // 16, seed, i) for i in range(frames))
    ]
    timescale, duration = 1000, 1000 * frames
    avcc = _box(
        b"avcC",
        bytes([1, 66, 0xC0, 30, 0xFF, 0xE1]),
        struct.pack(">H", len(sps)) + sps,
        bytes([1]) + struct.pack(">H", len(pps)) + pps,
    )
    avc1 = _box(
        b"avc1",
        bytes(6) + struct.pack(">H", 1) + bytes(16),
        struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
        bytes(32) + struct.pack(">Hh", 0x18, -1),
        avcc,
    )

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full(b"stsd", 0, struct.pack(">I", 1), avc1),
            _full(b"stts", 0, struct.pack(">III", 1, frames, timescale)),
            _full(b"stsc", 0, struct.pack(">IIII", 1, 1, frames, 1)),
            _full(
                b"stsz",
                0,
                struct.pack(">II", 0, frames),
                *(struct.pack(">I", len(s)) for s in samples),
            ),
            _full(b"stco", 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full(b"vmhd", 1, bytes(8)),
            _box(b"dinf", _full(b"dref", 0, struct.pack(">I", 1), _full(b"url ", 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0)),
            _full(b"hdlr", 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
            minf,
        )
        tkhd = _full(
            b"tkhd", 3,
            struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8),
            struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
            struct.pack(">II", width << 16, height << 16),
        )  # fmt: skip
        mvhd = _full(
            b"mvhd", 0,
            struct.pack(">IIIIIH", 0, 0, timescale, duration, 0x10000, 0x100), bytes(10),
            _MATRIX, bytes(24), struct.pack(">I", 2),
        )  # fmt: skip
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    head = ftyp + moov(0)
    return ftyp + moov(len(head) + 8) + _box(b"mdat", *samples)
