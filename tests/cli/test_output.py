"""``-o FILE``: atomic for regular files, and written straight into devices and FIFOs, whose node a
rename would replace (``-o /dev/null`` once turned the machine's /dev/null into a regular file)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from moat.cli.output import write_report
from moat.errors import MoatError


def test_a_fifo_stays_a_fifo_and_gets_the_report(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_report('{"ok": true}', str(fifo))
    reader.join(timeout=30)
    assert received == ['{"ok": true}\n']
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"]  # no temp file left beside it


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root (CI runs as root)")
def test_a_character_device_is_not_replaced(tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write_report("report", str(null))
    assert stat.S_ISCHR(null.stat().st_mode)


def test_regular_files_are_still_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_report("new", str(target))
    assert target.read_text() == "new\n"
    with pytest.raises(MoatError, match="cannot write"):
        write_report("x", str(tmp_path))  # a directory is not a report file
