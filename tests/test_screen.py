"""Published runs whose prompts cannot have been computed are screened out of the fit and the targets."""

import numpy as np
import pandas as pd
import pytest

from planner import fit_e2e, profiles
from planner import validate_e2e as v


def _llama_run() -> pd.DataFrame:
    d = v.rows(("vllm",))
    r = d[(d["model"] == "Llama-3.1-8B") & (d["tp_size"] == 1) & (d["isl"] == 1000) & (d["osl"] == 100)
          & (d["batch_size"] == 112)]
    assert len(r) == 1, "the bundled reference rows lost the Llama-3.1-8B FP8 run on one H200 at 112 clients"
    return r.reset_index(drop=True)


def test_a_run_faster_than_its_prompts_can_be_computed_is_screened():
    r = _llama_run()
    row = r.iloc[0]
    # measured: TTFT 71.91 ms, TPOT 11.25 ms, 100 tokens out -> a request lasts 71.91 + 99 x 11.25 = 1,185.66 ms,
    # 112 clients -> 112 / 1.18566 = 94.46 requests/s, each with a 1,000-token prompt
    assert row.silicon_ttft_ms == pytest.approx(71.91) and row.silicon_tpot_ms == pytest.approx(11.25)
    rate = 112 / ((71.91 + 99 * 11.25) / 1e3)
    assert rate == pytest.approx(94.46, abs=0.01)
    # no table can beat the datasheet: Llama-3.1-8B multiplies 8.03 G - 2 x 0.525 G (embedding, head) = 6.98 G
    # weights per prompt token, 2 x 6.98e9 x 1,000 = 1.396e13 FLOP per prompt at H200's 1,979 TFLOPS dense fp8
    # = 7.05 ms at the least, so the prompts alone take >= 94.46 x 7.05 ms = 0.666 of every second
    per_prompt = v.table_prefill_s(row, batched=True)
    assert per_prompt >= 7.05e-3
    s = v.screen(r)
    assert s["cold_share"].iloc[0] == pytest.approx(rate * per_prompt, rel=1e-9)
    assert s["cold_share"].iloc[0] >= 0.666
    # on the measured kernels (not the datasheet) they need more than the whole run
    assert s["cold_share"].iloc[0] > v.COLD_LIMIT
    assert s["screened"].iloc[0] == "prompts need more GPU time than the run lasted"


def test_the_share_falls_as_the_measured_run_slows():
    r = _llama_run()
    base = v.screen(r)["cold_share"].iloc[0]
    slow = r.assign(silicon_ttft_ms=r["silicon_ttft_ms"] * 2, silicon_tpot_ms=r["silicon_tpot_ms"] * 2)
    assert v.screen(slow)["cold_share"].iloc[0] == pytest.approx(base / 2, rel=1e-9)  # twice the time, half the share
    slower = r.assign(silicon_ttft_ms=r["silicon_ttft_ms"] * 10, silicon_tpot_ms=r["silicon_tpot_ms"] * 10)
    assert v.screen(slower)["screened"].iloc[0] == ""


def test_a_campaign_with_one_impossible_run_is_screened_whole_and_only_aiperf_campaigns_spread():
    r = _llama_run()
    fast = r.iloc[0].copy()
    slow = r.iloc[0].copy()
    slow["id"], slow["silicon_ttft_ms"], slow["silicon_tpot_ms"] = "slow", 719.1, 112.5  # 10x: computable
    gap = pd.DataFrame([fast, slow])
    s = v.screen(gap)
    assert list(s["screened"]) == ["prompts need more GPU time than the run lasted",
                                   "same campaign as a run whose prompts cannot have been computed"]
    assert s["cold_share"].iloc[1] < v.COLD_LIMIT
    # InferenceX's runs draw random prompts: an impossible one says nothing about the others
    pipe = gap.assign(source="aic-pipeline")
    assert list(v.screen(pipe)["screened"]) == ["prompts need more GPU time than the run lasted", ""]
    # another campaign's file is not touched
    other = slow.copy()
    other["silicon_data_source"] = "source_file=aic-auto-gap-analysis/data/h200_sxm/vllm/0.12.0/other.csv"
    assert list(v.screen(pd.DataFrame([fast, other]))["screened"])[1] == ""


def test_screened_runs_do_not_move_the_fit():
    # r1, r2: TPOT measured = predicted + 0.010 x 0.08, so the ranks' spread is 0.08; r3 measured predicted +
    # 0.010 x 0.25, within 2x of the prediction, so the TPOT fit keeps it unless it is screened
    ids = ["r1", "r2", "r3"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.3], "tpot_s": [0.010, 0.010, 0.010]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + 0.010 * np.array([0.08, 0.08, 0.25])) * 1e3
    base["silicon_ttft_ms"] = base["ttft_s"] * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["allreduce_spread"] = zero.assign(tpot=0.010)
    kept = fit_e2e.Sensitivity(base.assign(screened=""), slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    # all three, relative errors: minimise sum((0.010 x (x - a_i)) / m_i)^2 with m_i = 0.010 (1 + a_i)
    w = 1 / (1 + np.array([0.08, 0.08, 0.25])) ** 2
    want_all = float(np.sum(w * np.array([0.08, 0.08, 0.25])) / np.sum(w))
    assert fit_e2e.fit(kept)["allreduce_spread"] == pytest.approx(want_all, rel=1e-9)
    out = fit_e2e.Sensitivity(base.assign(screened=["", "", "why"]), slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(out)["allreduce_spread"] == pytest.approx(0.08, rel=1e-9)


def test_the_committed_runs_are_screened_for_a_reason_they_show():
    for name, g in profiles.e2e_runs():
        assert {"cold_share", "screened"} <= set(g.columns), f"{name}: rerun benchmarks/bench_e2e.py --write"
        out = g[g["screened"].fillna("").astype(str) != ""]
        own = out[out["screened"] == "prompts need more GPU time than the run lasted"]
        assert (own["cold_share"] > v.COLD_LIMIT).all(), name
        kept = g[g["screened"].fillna("").astype(str) == ""]
        assert (kept["cold_share"].dropna() <= v.COLD_LIMIT).all(), name


def test_the_validation_table_shows_screened_runs_apart_and_once():
    from planner import validate
    rows = validate.silicon_rows()
    n = sum(int(v.screened(g).sum()) for _, g in profiles.e2e_runs())
    assert n > 0
    out = rows[rows["source"].str.startswith("aic-silicon-screened")]
    assert len(out) == 2 * n  # TTFT and TPOT, once each, held out
    ids = set(out["provenance"].str.extract(r", id ([^;]+);", expand=False))
    kept = rows[~rows["source"].str.startswith("aic-silicon-screened")]
    assert not ids & set(kept["provenance"].str.extract(r", id ([^;]+);", expand=False))
