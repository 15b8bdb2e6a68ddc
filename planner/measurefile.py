"""The profiler's measurement CSVs: read strictly, extended atomically.

A row is measured only when its line is complete. The profiler writes each row by rewriting the
whole file to a temporary file and renaming it over the old one (``append_row``), so a crash or
Ctrl-C leaves the old file or the new one, never half a row. A file cut short by other means (a
full disk, a copy interrupted) ends in an unterminated line: ``read_table`` leaves that line out and
says so, and the next ``append_row`` drops it, so the point is measured again. Any other damage (a
row with more or fewer fields than the header, a binary file, an unreadable quote) is refused with a
PlannerInputError naming the file and the line: never read as data, never extended.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import PlannerInputError

MAX_FILE_BYTES = 200_000_000


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    partial_line: bool  # an unterminated last line was left out


def _refuse(path: Path, problem: str) -> PlannerInputError:
    return PlannerInputError(str(path), problem, "move the file away or delete it; `python -m planner profile` "
                                                 "with the same --out starts a new one")


def _text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _refuse(path, f"is over {MAX_FILE_BYTES:,} bytes, not a measurement file")
        data = path.read_bytes()
    except OSError as e:
        raise PlannerInputError(str(path), f"cannot be read ({e.strerror or e})", "check the path") from None
    if b"\x00" in data:
        raise _refuse(path, "is a binary file, not a CSV")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(path, "is not UTF-8 text, not a measurement CSV") from None


def read_table(path: str | Path) -> Table:
    """Header and complete rows of ``path``; an empty file has no header and no rows."""
    path = Path(path)
    text = _text(path)
    complete = text[: text.rfind("\n") + 1]
    try:
        rows = [r for r in csv.reader(io.StringIO(complete), strict=True) if r]
    except csv.Error as e:
        raise _refuse(path, f"is not a readable CSV ({e})") from None
    if not rows:
        return Table((), (), bool(text.strip()))
    header = tuple(rows[0])
    for line, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise _refuse(path, f"row {line} has {len(r)} fields, the header {len(header)}: the file is damaged")
    return Table(header, tuple(tuple(r) for r in rows[1:]), complete != text)


def _cell(v) -> str:
    """One line per row: a cell's line breaks become spaces."""
    return " ".join(str(v).splitlines()) if v is not None else ""


def append_row(path: str | Path, columns: list[str], row: dict) -> Table:
    """Write ``path`` again with ``row`` added (temp file + rename); returns what was kept before it.

    An unterminated last line is dropped (its point was not measured); a header other than
    ``columns`` or a damaged row is refused, and the file is left as it was."""
    path = Path(path)
    old = read_table(path) if path.exists() else Table((), (), False)
    if old.header and old.header != tuple(columns):
        raise _refuse(path, "has other columns than this profiler writes")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows(old.rows)
    w.writerow([_cell(row.get(k, "")) for k in columns])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return old
