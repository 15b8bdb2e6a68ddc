"""Issue 14, a dashboard a team can trust and share: every page's inputs in the URL, uploads and links
that say what they cannot carry, remedies that make a plan fit in one click, saved plans compared."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from test_app_pages import app

from dashboard import state
from dashboard.fmt import duration as fmt_duration
from dashboard.fmt import gib as fmt_gib
from dashboard.fmt import per_s as fmt_per_s
from dashboard.fmt import usd as fmt_usd
from planner import api, profiles
from planner.request import PlanRequest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
BASE = {"model": "Llama-3.1-8B", "gpu": "H100-SXM"}
TOO_BIG = {**BASE, "batch": 512, "prompt": 8192, "output": 1024}   # 592 GiB per GPU (tests/test_remedies.py)

pytestmark = pytest.mark.skipif("Llama-3.1-8B" not in profiles.model_names() or "H100-SXM" not in profiles.gpus(),
                                reason="needs the bundled Llama-3.1-8B and H100-SXM")


def _app(page: str | None = None, **query):
    at = app(page, timeout=300, **query)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _qp(at) -> dict[str, str]:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# each page's inputs: (page, URL parameters, the widget kind and key to read each back)
PAGE_INPUTS = [
    ("capacity", {"c_rate": "20.0", "c_prompt": "700", "c_tpot_on": "0", "c_pct": "99", "c_kv": "bf16",
                  "c_tps": "1,2", "c_pps": "1", "c_server": "sglang"}),
    ("tradeoffs", {"to_maxb": "64", "to_gpus": "H100-SXM", "to_fmts": "bf16"}),
    ("quantization", {"q_ctx": "8192"}),
    ("engine", {"e_mml": "4096", "e_entry": "LLM"}),
    ("engine", {"e_version_vllm": "0.27.0", "e_util_0.27.0": "0.85"}),  # keyed by engine and version
    ("validation", {"v_pred": "datasheet"}),
]


@pytest.mark.parametrize("page,params", PAGE_INPUTS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(PAGE_INPUTS)])
def test_a_pages_inputs_survive_the_url_round_trip(page, params):
    at = _app(page, **BASE, **params)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    for k, v in params.items():
        assert _qp(at)[k] == v, k   # read into the widget and written back unchanged
    again = _app(page, **_qp(at))
    assert {k: _qp(again)[k] for k in params} == params


def test_the_capacity_workload_reaches_the_widgets_from_a_link():
    at = _app("capacity", **BASE, c_rate="20", c_kv="bf16,fp8", c_pps="1,2")
    assert at.number_input(key="c_rate").value == 20.0
    assert at.multiselect(key="c_kv").value == ["bf16", "fp8"] and at.multiselect(key="c_pps").value == [1, 2]
    assert at.multiselect(key="c_kv").value == _app("capacity", **BASE).multiselect(key="c_kv").value  # the default


def test_a_bad_page_parameter_warns_and_keeps_the_default():
    at = _app("capacity", **BASE, c_rate="lots", c_kv="int3")
    warned = " ".join(w.value for w in at.warning)
    assert "c\\_rate" in warned and "c\\_kv" in warned
    assert at.number_input(key="c_rate").value == 5.0


def test_open_in_plan_carries_the_ranked_plan_to_the_plan_page():
    at = _app("capacity", **BASE, c_rate="2", c_gpus="H100-SXM", c_tps="1", c_weights="bf16", c_kv="bf16")
    assert at.success, "a plan meets the targets"
    at.button(key="c_open_go").click().run()
    assert not at.exception
    s = at.session_state["selection"]
    assert (s.gpu, s.tp, s.weights, s.kv_dtype) == ("H100-SXM", 1, "bf16", "bf16")
    assert "TTFT mean" in _metrics(at), "the Plan page is shown"
    # the capacity search sizes batches at average occupancy; the plan page says so when the peak does not fit
    r = api.plan_request(s.request())
    assert r.fits or any("average occupancy" in w.value for w in at.warning)


def test_a_plan_that_cannot_run_shows_dashes():
    # 70B in bf16 (141 GB of weights) on one 24 GB L4: not one request fits, so no latency, throughput or cost
    at = _app(model="Llama-3.1-70B", gpu="L4", batch=8, prompt=1024, output=256)
    shown = _metrics(at)
    assert shown["Largest batch"] == "0"
    assert all(shown[k] == "—" for k in ("TTFT mean", "TTFT p90", "TPOT mean", "TTFT lower bound", "Output tokens/s",
                                          "$ / 1M output tokens"))
    table = at.dataframe[0].value
    assert table.loc[table["metric"] == "TTFT p90", "value"].item() == "—"
    assert not at.error


def test_a_batch_over_the_pool_queues_and_remedies_fit_in_one_click():
    at = _app(**TOO_BIG)
    shown = _metrics(at)
    assert shown["Largest batch"] == "48"
    # the engine's start-up pool (54.69 GiB) holds 48 of the 512 (tests/test_remedies.py has the arithmetic) and
    # queues the rest: the latency is the simulation's, and so are the throughput and cost (Little's law on the
    # queued clients: 512 over the simulated mean e2e plus vLLM's return gap)
    r = api.plan_request(PlanRequest.from_params({k: str(v) for k, v in TOO_BIG.items()}))
    assert (r.fits, r.memory.max_batch, r.latency.simulated) == (False, 48, True)
    gap = dict(profiles.engine_table("vllm").constants)["return_gap_s"].value
    assert r.throughput.requests_per_s == pytest.approx(TOO_BIG["batch"] / (r.latency.e2e_latency_s + gap))
    assert shown["Output tokens/s"] == fmt_per_s(r.throughput.deployment_output_tokens_per_s)
    assert shown["$ / 1M output tokens"] == fmt_usd(r.cost.cost_usd_per_1m_output_tokens)
    assert shown["TTFT mean"] == fmt_duration(r.latency.ttft_s) and any("queues the rest" in c.value for c in at.caption)
    assert not at.error
    for kind in ("batch", "kv", "tp", "weights"):
        assert at.button(key=f"remedy_{kind}")
    at.button(key="remedy_batch").click().run()
    assert not at.exception
    assert at.session_state["sb_batch"] == 48 and at.success and "Fits" in at.success[0].value
    assert _metrics(at)["TTFT mean"] != "—"


def test_more_tp_or_4_bit_weights_make_a_70b_fit():
    at = _app(model="Llama-3.1-70B", gpu="H100-SXM", batch=32, prompt=1024, output=256)
    at.button(key="remedy_tp").click().run()
    assert (at.session_state["sb_tp"], at.session_state["sb_gpus"]) == (4, 4) and at.success
    at = _app(model="Llama-3.1-70B", gpu="H100-SXM", batch=32, prompt=1024, output=256)
    at.button(key="remedy_weights").click().run()
    assert at.session_state["sb_weights"] == "awq-4bit-g128" and at.success


def test_saved_plans_are_compared_side_by_side_with_a_numeric_csv():
    at = _app(**BASE, batch=16)
    at.button(key="save_plan").click().run()
    at.selectbox(key="sb_kv").set_value("fp8").run()
    at.button(key="save_plan").click().run()
    assert len(at.query_params["cmp"]) == 2
    at.switch_page("dashboard/pages/compare.py").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table.shape[1] == 3 and "TTFT p90" in set(table["figure"])
    saved = list(at.query_params["cmp"])
    assert len(state.read_saved(saved, [])) == 2
    from streamlit.testing.v1 import AppTest

    again = AppTest.from_file(APP, default_timeout=300)
    for k, v in _qp(at).items():
        again.query_params[k] = v
    again.query_params["cmp"] = saved
    again.run()
    again.switch_page("dashboard/pages/compare.py").run()
    assert not again.exception and again.dataframe[0].value.equals(table)  # the link reopens the same set


def test_the_compare_download_is_numbers_only():
    from dashboard.tables import results_frame as download

    reqs = [PlanRequest.from_params({**BASE, "batch": "8", "prompt": "512", "output": "64", "kv": kv}) for kv in ("bf16", "fp8")]
    df = download([api.plan_request(r) for r in reqs])
    labels = {"model", "gpu", "weights", "kv_dtype", "engine", "server", "server_version"}
    numeric = df.drop(columns=list(labels))
    assert all(pd.api.types.is_numeric_dtype(numeric[c]) for c in numeric.columns)
    assert list(df["kv_dtype"]) == ["bf16", "fp8"] and df["fits"].tolist() == [1, 1]
    assert math.isclose(df["ttft_s"].iloc[0], api.plan_request(reqs[0]).latency.ttft_s)


def test_a_link_to_an_uploaded_model_says_so_and_shows_no_plan():
    at = _app(**{**BASE, "model": "my-model (uploaded)", "upload": "1"}, batch=8)
    said = " ".join(w.value for w in at.main.warning)
    assert "uploaded model" in said and "my\\-model" in said
    assert not at.success and "TTFT mean" not in _metrics(at)
    assert _qp(at)["upload"] == "1" and _qp(at)["model"] == "my-model (uploaded)"  # the link keeps saying so
    at.button(key="forget_link_upload").click().run()
    assert at.success and "upload" not in _qp(at)


def test_gpu_labels_are_in_gib():
    label = state.gpu_label("H100-SXM")
    assert label == f"H100-SXM ({profiles.gpu('H100-SXM').total_memory_bytes / 2**30:.0f} GiB)" and " GB" not in label


def test_a_gpu_defined_in_the_sidebar_reaches_the_capacity_search():
    at = _app()
    at.text_input(key="sb_ugpu_name").set_value("lab")
    at.button[[b.label for b in at.button].index("Use this GPU")].click().run()
    gid = at.session_state["sb_gpu"]
    assert gid.startswith("user-lab-")
    at.switch_page("dashboard/pages/capacity.py").run()
    assert gid in at.multiselect(key="c_gpus").options or any(gid in o for o in at.multiselect(key="c_gpus").options)


def test_tiles_say_mean_p90_and_lower_bound():
    shown = _metrics(_app(**BASE, batch=32))
    assert {"TTFT mean", "TTFT p90", "TPOT mean", "TPOT p90", "TTFT lower bound", "$ / 1M output tokens",
            "$ / 1M tokens (in+out)"} <= set(shown)


def test_pp_in_the_sidebar_travels_in_the_link_and_reaches_the_plan():
    at = _app(**BASE, tp="2", pp="2", gpus="8")
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="sb_pp").value == 2 and at.session_state["selection"].pp == 2
    assert _qp(at)["pp"] == "2"
    expected = api.plan_request(at.session_state["selection"].request())
    assert expected.request.deployment.pp == 2 and expected.replicas == 2   # 8 GPUs // (TP 2 x PP 2)
    table = at.dataframe[0].value
    assert table.loc[table["metric"] == "replicas", "value"].item() == "2"
    assert table.loc[table["metric"] == "replicas", "unit"].item() == "of TP=2 x PP=2"
    assert table.loc[table["metric"] == "weights per GPU", "value"].item() == fmt_gib(expected.memory.weights_bytes_per_gpu)
    again = _app(**_qp(at))   # the link opened elsewhere
    assert again.session_state["selection"].pp == 2 and _qp(again)["pp"] == "2"
    again.selectbox(key="sb_pp").set_value(1).run()   # one stage: no pp= in the link (the default)
    assert "pp" not in _qp(again) and again.session_state["selection"].pp == 1


def test_raising_pp_raises_the_gpus_and_a_bad_pp_warns():
    at = _app(**BASE, tp="2", gpus="2")
    at.selectbox(key="sb_pp").set_value(4).run()
    assert at.number_input(key="sb_gpus").value == 8 and not at.error   # one replica of TP 2 x PP 4
    bad = _app(**BASE, pp="3")
    warned = " ".join(w.value for w in bad.warning)
    assert "pp=3" in warned and "ignored" in warned and bad.selectbox(key="sb_pp").value == 1


def test_open_in_plan_opens_a_pipeline_parallel_plan_with_its_pp():
    at = _app("capacity", **BASE, c_rate="2", c_gpus="H100-SXM", c_tps="1", c_pps="2", c_weights="bf16", c_kv="bf16")
    assert at.success, "a plan meets the targets"
    assert " PP2 " in at.selectbox(key="c_open").options[0]   # PP>1 plans are offered, no longer PP=1 only
    at.button(key="c_open_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    s = at.session_state["selection"]
    assert (s.gpu, s.tp, s.pp) == ("H100-SXM", 1, 2) and s.gpus % 2 == 0
    assert "TTFT mean" in _metrics(at) and _qp(at)["pp"] == "2"
    assert api.plan_request(s.request()).request.deployment.pp == 2


def test_a_remedy_keeps_the_pipeline_stages():
    at = _app(**TOO_BIG, pp="2", gpus="2")
    assert at.session_state["selection"].pp == 2 and at.button(key="remedy_batch")
    at.button(key="remedy_batch").click().run()
    s = at.session_state["selection"]
    assert s.pp == 2 and s.batch < 512 and _qp(at)["pp"] == "2" and not at.error


def test_the_serving_engine_in_the_sidebar_reaches_the_plan_and_travels_in_the_link():
    # SGLang's plan: its scheduler and its own fitted costs (a different TTFT than vLLM's for the same choices)
    at = _app(**BASE, batch="16")
    vllm_ttft = _metrics(at)["TTFT mean"]
    at.selectbox(key="sb_server").set_value("sglang").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    s = at.session_state["selection"]
    assert s.server == "sglang" and _qp(at)["server"] == "sglang"
    r = api.plan_request(s.request())
    assert r.request.deployment.server == "sglang"
    assert _metrics(at)["TTFT mean"] == fmt_duration(r.latency.ttft_s) != vllm_ttft
    assert any("SGLang" in c.value for c in at.caption), "the headline names its engine"
    again = _app(**_qp(at))   # the link opened elsewhere
    assert again.session_state["selection"].server == "sglang"
    again.selectbox(key="sb_server").set_value("vllm").run()   # the default: no server= in the link
    assert "server" not in _qp(again)


def test_a_bad_serving_engine_in_a_link_warns_and_transformers_has_none():
    bad = _app(**BASE, server="tgi")
    warned = " ".join(w.value for w in bad.warning)
    assert "server=tgi" in warned and "ignored" in warned and bad.session_state["selection"].server == "vllm"
    hf = _app(**BASE, engine="transformers", server="sglang")
    assert hf.selectbox(key="sb_server").disabled
    assert hf.session_state["selection"].server == "vllm" and not hf.error   # HF generate: no serving engine


def test_open_in_plan_carries_the_capacity_search_s_engine():
    # a ranked plan searched on SGLang opens on the Plan page as SGLang's plan, not vLLM's
    at = _app("capacity", **BASE, c_rate="2", c_gpus="H100-SXM", c_tps="1", c_weights="bf16", c_kv="bf16",
              c_server="sglang")
    assert at.success, "a plan meets the targets"
    at.button(key="c_open_go").click().run()
    assert not at.exception and not at.error
    assert at.session_state["selection"].server == "sglang" and _qp(at)["server"] == "sglang"
    assert any("SGLang" in c.value for c in at.caption)


def test_a_plan_vllm_would_not_start_says_so_in_the_main_area():
    # Qwen3-32B on one H100 under the newest vLLM: its default max_model_len (40,960 x 256 KiB = 10.00 GiB of KV for
    # one request) does not fit the engine's pool (`capacity Qwen3-32B --gpu H100-SXM`: 8.06 GiB), while the plan's
    # 32 requests of 418 tokens do; the page says how to start it, in English and Korean
    q = {"model": "Qwen3-32B", "gpu": "H100-SXM", "batch": 32, "prompt": 217, "output": 201}
    at = _app(**q)
    assert not at.error and at.success  # the plan itself fits
    assert any("refuses to start at its default max_model_len of 40,960" in w.value and "10.00 GiB" in w.value
               for w in at.warning)
    ko = _app(lang="ko", **q)
    assert not ko.error
    assert any("시작하지 않습니다" in w.value and "40,960" in w.value and "refuses" not in w.value for w in ko.warning)
