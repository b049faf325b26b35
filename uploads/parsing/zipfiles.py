"""The files of a zip archive, each checked before and while it is unpacked.

A zip states each member's sizes in its directory, but those numbers can lie, so
both are checked: the directory first (ratio, count, total), then the bytes
actually written while unpacking (the same caps). Folders, hidden files and
macOS resource forks are skipped; a zip inside the zip is refused.
"""

import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from uploads.parsing.source import FileProblem, _mb

CHUNK = 64 * 1024


@dataclass
class Member:
    name: str
    size: int
    file: BinaryIO  # a temporary file, at position 0


def is_zip(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06")


def _wanted(info: zipfile.ZipInfo) -> bool:
    path = PurePosixPath(info.filename)
    if info.is_dir() or not path.name:
        return False
    return not (path.name.startswith(".") or "__MACOSX" in path.parts)


def members(raw: BinaryIO, *, max_total: int, max_ratio: int, max_files: int) -> Iterator[Member]:
    """Each wanted member as a temporary file. Raises FileProblem before the first if the directory is
    over a cap, and while unpacking if the data is."""
    try:
        archive = zipfile.ZipFile(raw)
        infos = [i for i in archive.infolist() if _wanted(i)]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FileProblem(f"The zip file is damaged or truncated ({exc}).") from exc
    if not infos:
        raise FileProblem("The zip file holds no files.")
    if len(infos) > max_files:
        raise FileProblem(f"The zip file holds {len(infos)} files; at most {max_files} are accepted at once.")
    total = sum(i.file_size for i in infos)
    if total > max_total:
        raise FileProblem(
            f"The zip file decompresses to more than {_mb(max_total)}; it was refused. Split it into smaller zips."
        )
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise FileProblem(
                f"The file {info.filename} in the zip expands {info.file_size // max(info.compress_size, 1)} times "
                f"(more than {max_ratio}): the zip was refused as a zip bomb."
            )
        if info.flag_bits & 0x1:
            raise FileProblem(f"The file {info.filename} in the zip is encrypted; upload it unencrypted.")
    written = 0
    for info in infos:
        out = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - handed to the caller
        size = 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    # The directory's sizes can lie: the bytes themselves are counted too.
                    if written > max_total or size > max_ratio * max(info.compress_size, 1) + 1024 * 1024:
                        raise FileProblem(
                            f"The file {info.filename} in the zip expands beyond what its directory says: "
                            "the zip was refused as a zip bomb."
                        )
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            out.close()
            raise FileProblem(f"The file {info.filename} in the zip cannot be unpacked ({exc}).") from exc
        except FileProblem:
            out.close()
            raise
        out.seek(0)
        yield Member(name=PurePosixPath(info.filename).name, size=size, file=out)
