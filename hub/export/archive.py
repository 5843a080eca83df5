"""Write a shop's export as a zip, streamed: every file is written as it is read.

Each data set is written twice, as CSV (a header row, then one row per record)
and as JSON Lines (one JSON object per line), followed by ``manifest.json``
with each file's row count, size and SHA-256 of its uncompressed bytes.

The zip goes to a non-seekable sink, so :mod:`zipfile` writes data
descriptors and never needs the archive in memory. A zip can have only one
entry open for writing, so a data set is read twice, once per format, rather
than buffered: decrypted shop data never touch a temporary file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cornerstore.csvcells import neutralise
from cornerstore.records.codec import format_time

FORMAT = "cornerstore-export/1"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DataSet:
    """One table of the export: its file stem, its columns, and a way to read its rows."""

    name: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterable[dict[str, Any]]]


class _Sink(io.RawIOBase):
    """Collects what the zip writer writes, to be handed on chunk by chunk."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.pending = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if not data:
            return 0  # The compressor often holds a row back; keep no empty chunks.
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        self.pending += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        return out


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    return info


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return neutralise(value)


def _csv_lines(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
        yield text.getvalue().encode()
        text.seek(0)
        text.truncate()
    yield text.getvalue().encode()  # The header, if there were no rows.


def _json_lines(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        line = {column: _plain(row.get(column)) for column in columns}
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        yield b"\n"


def stream_zip(
    data_sets: Iterable[DataSet], header: dict[str, Any], *, chunk_bytes: int = 256 * 1024
) -> Iterator[bytes]:
    """The zip's bytes, in chunks, with ``manifest.json`` (``header`` plus file stats) last."""
    sink = _Sink()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, mode="w") as archive:
        for data_set in data_sets:
            for suffix, render in (("csv", _csv_lines), ("jsonl", _json_lines)):
                name = f"{data_set.name}.{suffix}"
                counted = _Counted(data_set.rows())
                digest, size = hashlib.sha256(), 0
                with archive.open(_info(name), "w", force_zip64=True) as entry:
                    for piece in render(data_set.columns, counted):
                        entry.write(piece)
                        digest.update(piece)
                        size += len(piece)
                        if sink.pending >= chunk_bytes:
                            yield sink.drain()
                files.append(
                    {
                        "name": name,
                        "rows": counted.count,
                        "bytes": size,
                        "sha256": digest.hexdigest(),
                    }
                )
        manifest = {**header, "format": FORMAT, "files": files}
        with archive.open(_info("manifest.json"), "w") as entry:
            entry.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
    yield sink.drain()


class _Counted:
    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self._rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self._rows:
            self.count += 1
            yield row
