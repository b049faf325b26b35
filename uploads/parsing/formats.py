"""Which reader a file needs, from its first bytes: CSV (maybe gzip), Excel (.xlsx), Green Button XML.

Every reader gives the same records (a header, then `(line, cells)`), so checking,
storing, review and push are shared by every format.
"""

import gzip
import io
from typing import BinaryIO

from uploads.parsing.greenbutton import GreenButtonSource, looks_like_xml
from uploads.parsing.source import CsvSource, FileProblem, _CappedReader
from uploads.parsing.xlsx import XlsxSource


def _gunzip(raw: BinaryIO, cap: int) -> io.BufferedReader:
    raw.seek(0)
    return io.BufferedReader(_CappedReader(gzip.GzipFile(fileobj=raw, mode="rb"), cap), buffer_size=64 * 1024)


def open_source(raw: BinaryIO, *, max_decompressed_bytes: int, sheet: str = ""):
    """CsvSource, XlsxSource or GreenButtonSource; raises FileProblem."""
    head = raw.read(512)
    raw.seek(0)
    gzipped = head.startswith(b"\x1f\x8b")
    if gzipped:
        try:
            head = _gunzip(raw, max_decompressed_bytes).peek(512)[:512]
        except (OSError, EOFError, FileProblem):
            head = b""  # CsvSource reports the broken gzip in its own words
        raw.seek(0)
    if looks_like_xml(head):

        def stream():
            raw.seek(0)
            return _gunzip(raw, max_decompressed_bytes) if gzipped else raw

        source = GreenButtonSource(stream)
        source.compression = "gzip" if gzipped else ""
        return source
    if head.startswith(b"PK\x03\x04") and not gzipped:
        return XlsxSource(raw, max_decompressed_bytes=max_decompressed_bytes, sheet=sheet)
    return CsvSource(raw, max_decompressed_bytes=max_decompressed_bytes)


__all__ = ["FileProblem", "open_source"]
