"""``rpmdb.sqlite``: rpm >= 4.16 (Fedora 33+, RHEL 9, CBL-Mariner, Azure Linux, Amazon Linux 2023).

The headers live in ``Packages(hnum INTEGER PRIMARY KEY, blob BLOB)``; rpm reads them in ``hnum``
order. SQLite needs a real file, and the database is usually left in WAL mode, which a plain
read-only open cannot handle without a writable ``-shm`` beside it. So the stream is copied into a
private temporary directory and opened with ``immutable=1``: SQLite then takes no locks, needs no
``-shm`` and never writes. A progress handler bounds the work a corrupt file can cause.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import IO

from moat.errors import ParseError
from moat.inventory.rpmdb.header import MAX_BLOB_BYTES

SQLITE_MAGIC = b"SQLite format 3\0"

MAX_VM_STEPS = 50_000_000
"""SQLite virtual-machine instructions allowed for the whole read (rpm's table costs about 7 a row)."""
_PROGRESS_INTERVAL = 10_000
_TABLE_KIND = "SELECT type FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE"


def iter_blobs(stream: IO[bytes]) -> Generator[bytes, None, None]:
    """Yield the header blob of every row of the Packages table, in ``hnum`` order."""
    stream.seek(0)
    if stream.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
        raise ParseError("rpm sqlite: not an SQLite 3 database (bad magic)")
    stream.seek(0)
    with tempfile.TemporaryDirectory(prefix="moat-rpmdb-") as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        with path.open("wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        yield from _query(path)


def _query(path: Path) -> Generator[bytes, None, None]:
    steps = 0

    def progress() -> int:
        nonlocal steps
        steps += _PROGRESS_INTERVAL
        return 1 if steps > MAX_VM_STEPS else 0

    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise ParseError(f"rpm sqlite: cannot open the database: {exc}") from exc
    try:
        connection.set_progress_handler(progress, _PROGRESS_INTERVAL)
        try:
            kind = connection.execute(_TABLE_KIND).fetchone()
            if kind is None:
                raise ParseError("rpm sqlite: the database has no Packages table")
            if kind[0] != "table":
                # A view could compute endless rows; rpm's schema has a plain table.
                raise ParseError(f"rpm sqlite: Packages is a {kind[0]}, not a table")
            cursor = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
            while True:
                row = cursor.fetchone()
                if row is None:
                    break
                hnum, blob = row
                if not isinstance(blob, bytes):
                    raise ParseError(f"rpm sqlite: package {hnum} is not stored as a blob")
                if len(blob) > MAX_BLOB_BYTES:
                    raise ParseError(f"rpm sqlite: package {hnum} is too large ({len(blob)} bytes)")
                yield blob
        except sqlite3.Error as exc:
            if steps > MAX_VM_STEPS:
                raise ParseError("rpm sqlite: the database needs too much work to read") from exc
            raise ParseError(f"rpm sqlite: cannot read the Packages table: {exc}") from exc
    finally:
        connection.close()
