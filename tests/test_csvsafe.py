"""The one CSV writer: formula starters neutralised at a cell's start and after every line break in it,
every text cell quoted, numbers bare, and a path that cannot be written refused by name."""

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import csvsafe
from planner.cli import main
from planner.errors import PlannerInputError


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_a_line_break_inside_a_cell_cannot_start_a_formula():
    # the review's payload: a carriage return, then a formula on the "next line" of the cell
    df = pd.DataFrame({"model": ["ok\r=2+5+cmd|' /C calc'!A0", "a\n@SUM(1)", "a\r\n-1+1", "plain"]})
    out = cells(csvsafe.to_csv(df))
    assert [r[0] for r in out[1:]] == ["ok\r'=2+5+cmd|' /C calc'!A0", "a\n'@SUM(1)", "a\r\n'-1+1", "plain"]


def test_text_is_quoted_and_numbers_stay_numbers():
    df = pd.DataFrame({"gpu": ["=H100", "L4"], "headroom_bytes": [-1.5, 2.0], "tp": [1, 2], "fits": [True, False],
                       "cost": [np.nan, 0.5], "kind": pd.Categorical(["+x", "y"])})
    lines = csvsafe.to_csv(df).splitlines()
    # header quoted; text quoted and neutralised; -1.5 bare and unquoted; NaN an empty cell
    assert lines[0] == '"gpu","headroom_bytes","tp","fits","cost","kind"'
    assert lines[1] == '"\'=H100",-1.5,1,True,"",' + '"\'+x"'
    assert lines[2] == '"L4",2.0,2,False,0.5,"y"'


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(alphabet="=+-@\t\r\n a'", max_size=12), min_size=1, max_size=5))
def test_no_line_of_any_cell_starts_a_formula(values):
    out = cells(csvsafe.to_csv(pd.DataFrame({"x": values})))
    for row in out[1:]:
        for line in re.split(r"\r\n|\r|\n", row[0]):
            assert not line.startswith(("=", "+", "-", "@", "\t")), row


def test_write_refuses_a_missing_folder_and_a_folder(tmp_path):
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(PlannerInputError, match="does not exist") as e:
        csvsafe.write(df, tmp_path / "missing" / "x.csv")
    assert e.value.field == "--csv"
    with pytest.raises(PlannerInputError, match="is a folder"):
        csvsafe.write(df, tmp_path)
    assert csvsafe.write(df, tmp_path / "ok.csv").read_text() == '"a"\n1\n'


@pytest.mark.parametrize("where", ["missing/out.csv", "."])
def test_cli_csv_to_a_bad_path_exits_2_before_the_work(tmp_path, capsys, where):
    code = main(["plan", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "1", "--prompt", "8", "--output", "8",
                 "--csv", str(tmp_path / where)])
    assert code == 2 and capsys.readouterr().err.startswith("error: --csv: ")
