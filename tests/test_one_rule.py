"""One rule, one place: the efficiency a plan runs is the one its error bands were measured with,
and the code's defaults are the data file's."""

import json
from dataclasses import fields
from pathlib import Path

from planner import api, profiles, validate
from planner.timing import Efficiency

ROOT = Path(__file__).resolve().parent.parent


def test_efficiency_defaults_are_the_data_files():
    # profiles/kernels.json efficiency_defaults: memory 0.8, compute 0.8, 3 us per layer, 10 us all-reduce
    data = json.loads((ROOT / "profiles" / "kernels.json").read_text())["efficiency_defaults"]
    defaults = {f.name: f.default for f in fields(Efficiency)}
    assert {k: defaults[k] for k in data} == {k: v["value"] for k, v in data.items()}
    assert (defaults["compute"], defaults["layer_overhead_s"]) == (0.8, 3e-6)


def test_plan_and_validation_use_the_same_efficiency():
    cal = profiles.load_calibrations()
    pairs = [(g, e) for g, per in cal.items() for e in per if isinstance(per.get(e), dict)]
    assert pairs, "profiles/calibration.json has fits"
    for gpu, engine in pairs:
        assert api.efficiency_for(gpu, engine) == validate.efficiency(cal, gpu, engine), (gpu, engine)


def test_a_fitted_attention_efficiency_reaches_the_plan():
    # H100-SXM's paged fit carries attention_compute 0.514..: validation used to drop it (the bands then
    # described a model plan does not run: prefill attention at compute 0.82 instead of 0.51)
    fit = profiles.load_calibrations()["H100-SXM"]["paged"]
    assert 0.4 < fit["attention_compute"] < 0.6
    assert validate.efficiency(profiles.load_calibrations(), "H100-SXM", "paged").attention_compute == fit["attention_compute"]
    assert Efficiency.from_fit({"memory": 0.8}, None) == Efficiency(memory=0.8, provenance="datasheet")
    assert Efficiency.from_fit({"memory": 0.8}, {"memory": 0.5, "bogus": 1}).memory == 0.5


def test_the_format_table_never_changes():
    # a checkpoint's own variant is built from its name, not registered into the shared table
    table = profiles.formats()
    before = (dict(table.formats), dict(table.storage))
    fid = table.gptq_awq("gptq", 3, 64)
    assert fid == "gptq-3bit-g64" and (dict(table.formats), dict(table.storage)) == before
    fmt = table.get(fid)
    sid = dict(fmt.roles)["default"]
    # 3 bits + (16-bit scale + 3-bit zero) / 64 = 3.296875 bits per weight; g_idx 32 bits per input column
    st = table.storage_type(sid)
    assert (sid, st.bits_per_weight, st.per_in_col_bits) == ("gptq_3b_g64", 3 + 19 / 64, 32)
    assert table.storage_type(dict(table.get(table.fp8_block([64, 64], "f")).roles)["default"]).bits_per_weight == 8 + 32 / 4096
    assert table.get(table.nvfp4(32)).id == "nvfp4-g32" and (dict(table.formats), dict(table.storage)) == before
    assert table.gptq_awq("gptq", 4, 128) == "gptq-4bit-g128"  # bundled: its own entry
    import pytest

    from planner.errors import PlannerInputError
    with pytest.raises(PlannerInputError):
        table.get("gptq-9bit-g64")
