"""Tiny image files made in the tests: a real PNG (any loader decodes it) and the first bytes of
the other formats lint recognises (lint reads a file's signature, never decodes it)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


# The signature of each other format, with a few bytes after it: what lint reads.
HEADS = {
    "JPEG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\xff\xd9",
    "WebP": b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00",
    "GIF": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
}


def write_photo(path: Path, kind: str = "PNG") -> Path:
    """A tiny image of `kind` at `path` (folders made); the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes() if kind == "PNG" else HEADS[kind])
    return path
