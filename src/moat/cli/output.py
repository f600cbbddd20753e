"""Writing a report: to stdout, or atomically to a file (never a half-written report)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile

from moat.errors import MoatError


def write_report(text: str, path: str | None) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        return
    if _is_special(path):
        # /dev/null, /dev/stdout, a FIFO: write straight into it. Renaming a temp file over it would
        # replace the device node itself with a regular file.
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise MoatError(f"--output {path}: cannot write ({exc.strerror})") from exc
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MoatError(f"--output {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".moat-", suffix=".tmp")
    except OSError as exc:
        raise MoatError(f"--output {path}: cannot write ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report gets the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise MoatError(f"--output {path}: cannot write ({exc.strerror})") from exc


def _is_special(path: str) -> bool:
    """An existing path that is not a regular file or a directory (a device, a FIFO, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
