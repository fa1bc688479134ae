"""Inputs of ``vigil ingest``: files, folders, globs, gzip files and zip archives.

Each input is one stream of bytes: a file, a gzip file (by its magic bytes, whatever its
name), or one member of a zip archive. Folders are walked; hidden files and macOS resource
forks are skipped.
"""

from __future__ import annotations

import glob
import gzip
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vigil.core.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
HEAD_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class InputRef:
    """One stream to ingest: a file, or a member of a zip archive."""

    path: str
    member: str | None
    size: int

    @property
    def name(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path


def _skipped(name: str) -> bool:
    parts = Path(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts if p not in (".", ".."))


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _file_inputs(path: Path) -> Iterator[InputRef]:
    if _magic(path) == ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir() and not _skipped(info.filename):
                        yield InputRef(str(path), info.filename, info.file_size)
            return
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: damaged zip archive: {exc}") from exc
    yield InputRef(str(path), None, path.stat().st_size)


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not _skipped(str(relative)):
            yield path


def expand(paths: list[str]) -> list[InputRef]:
    """Every input named by files, folders and glob patterns, in a stable order."""
    refs: list[InputRef] = []
    for spec in paths:
        matches = [Path(p) for p in sorted(glob.glob(spec, recursive=True))] \
            if glob.has_magic(spec) else [Path(spec)]
        if not matches or not any(m.exists() for m in matches):
            raise InputError(f"{spec}: no such file or folder")
        for match in matches:
            files = _walk(match) if match.is_dir() else [match]
            for file in files:
                refs.extend(_file_inputs(file))
    return refs


class _Prepended:
    """A stream that first gives back bytes already read (the head), then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size:
                data += self._rest.read(size - len(data))
            return data
        return self._rest.read(size)


@contextmanager
def open_input(ref: InputRef) -> Iterator[tuple[bytes, BinaryIO]]:
    """The head (first bytes) and a stream of all the bytes of an input, decompressed."""
    with _open_raw(ref) as raw:
        magic = raw.read(2)
        stream: BinaryIO = _Prepended(magic, raw)  # type: ignore[assignment]
        if magic == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        try:
            head = stream.read(HEAD_SIZE)
        except (OSError, EOFError) as exc:
            raise InputError(f"{ref.name}: cannot decompress: {exc}") from exc
        yield head, _Prepended(head, stream)  # type: ignore[misc]


@contextmanager
def _open_raw(ref: InputRef) -> Iterator[BinaryIO]:
    try:
        if ref.member is None:
            with open(ref.path, "rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(ref.path) as archive, archive.open(ref.member) as member:
                yield member  # type: ignore[misc]
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{ref.name}: cannot read: {exc}") from exc
