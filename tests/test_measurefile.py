"""Measurement CSVs: complete rows only, atomic appends, damage refused (never read, never extended)."""

import pytest

from planner.errors import PlannerInputError
from planner.measurefile import append_row, read_table

COLS = ["status", "batch", "prompt"]


def test_rows_are_appended_atomically_and_read_back(tmp_path):
    p = tmp_path / "m.csv"
    append_row(p, COLS, {"status": "ok", "batch": 1, "prompt": 5})
    append_row(p, COLS, {"status": "oom", "batch": 2, "prompt": 5, "error": "ignored: not a column"})
    t = read_table(p)
    assert t.header == tuple(COLS) and t.rows == (("ok", "1", "5"), ("oom", "2", "5")) and not t.partial_line
    assert [f.name for f in tmp_path.iterdir()] == ["m.csv"], "no temporary file left behind"


def test_a_row_cut_short_is_left_out_then_replaced(tmp_path):
    p = tmp_path / "m.csv"
    append_row(p, COLS, {"status": "ok", "batch": 1, "prompt": 5})
    p.write_bytes(p.read_bytes() + b"ok,2,1")  # the review's truncated last row: no line end
    t = read_table(p)
    assert t.rows == (("ok", "1", "5"),) and t.partial_line
    old = append_row(p, COLS, {"status": "ok", "batch": 2, "prompt": 12})
    assert old.partial_line
    assert read_table(p).rows == (("ok", "1", "5"), ("ok", "2", "12")), "not glued onto the cut row"


@pytest.mark.parametrize("damage", [b"ok,1,5,extra,fields\r\n", b"ok\r\n", b'"unclosed,1,5\r\nok,1,5\r\n'])
def test_a_damaged_file_is_refused_and_left_as_it_was(tmp_path, damage):
    p = tmp_path / "m.csv"
    append_row(p, COLS, {"status": "ok", "batch": 1, "prompt": 5})
    before = p.read_bytes() + damage + b"ok,3,5\r\n"
    p.write_bytes(before)
    with pytest.raises(PlannerInputError) as e:
        append_row(p, COLS, {"status": "ok", "batch": 9, "prompt": 9})
    assert str(p) in e.value.field and p.read_bytes() == before


def test_binary_and_foreign_files_are_refused(tmp_path):
    b = tmp_path / "b.csv"
    b.write_bytes(b"\x00\x01\xffgarbage")
    with pytest.raises(PlannerInputError, match="binary"):
        read_table(b)
    other = tmp_path / "o.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(PlannerInputError, match="other columns"):
        append_row(other, COLS, {})
    assert read_table(tmp_path / "o.csv").rows == (("1", "2"),)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert read_table(empty).header == ()
