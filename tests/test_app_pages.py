"""AppTest for every dashboard page: a default run raises nothing, widgets set by key change the shown
numbers to exactly what planner.api returns for the same request, bad uploads show an error.

The expected strings are the core's numbers passed through dashboard.fmt, the formatter the pages use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from dashboard import fmt
from planner import api, profiles
from planner.request import PlanRequest
from planner.spec import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = ["plan", "tradeoffs", "attention", "quantization", "engine", "capacity", "validation", "learn"]

pytestmark = pytest.mark.skipif(not profiles.model_names() or not profiles.gpus(),
                                reason="no bundled profiles under profiles/models or profiles/gpus")


def app(page: str | None = None, timeout: float = 60, **query):
    """The app opened at ``query`` (the URL's parameters), then switched to ``page``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    if page and page != "plan":
        at.switch_page(f"dashboard/pages/{page}.py").run()
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def text(markdown: str) -> str:
    """What a markdown string shows: the escapes and word joiners of dashboard.fmt.plain removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(fmt.WORD_JOINER, "")


def no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def sel(at) -> dict:
    return at.session_state["selection"].as_dict()


def other_gpu(current: str) -> str:
    ids = [g for g in profiles.gpus() if g != current]
    return ids[0] if ids else current


# One element per page that only its body renders, late in the page (after the computation it
# shows): a page that fails or stops early lacks it. Kind, then a pattern for the label or text.
PAGE_ELEMENT = {
    "plan": ("metric", r"Largest batch"),
    "tradeoffs": ("subheader", r"Cost per 1M output tokens across GPUs"),
    "attention": ("subheader", r"KV cache dtype"),
    "quantization": ("metric", r"Layers on the GPU"),
    "engine": ("metric", r"KV cache pool"),
    "capacity": ("subheader", r"All [\d,]+ candidates, ranked"),
    "validation": ("subheader", r"Error per metric and GPU"),
    "learn": ("header", r"5\. Distillation: teacher and student"),
}


def labels(at, kind: str) -> list[str]:
    return [e.label if kind == "metric" else text(e.value) for e in getattr(at, kind)]


@pytest.mark.parametrize("page", PAGES)
def test_default_run_has_no_exception_and_no_error(page):
    # Page errors are caught and shown as st.error (dashboard/page.py), so "no traceback" alone would
    # pass a broken page: no st.error, no exception, and the page's own late element must be there.
    at = app(page)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"
    kind, pattern = PAGE_ELEMENT[page]
    assert any(re.fullmatch(pattern, x) for x in labels(at, kind)), (page, kind, labels(at, kind))


def test_plan_numbers_equal_the_core_after_widget_changes():
    at = app()
    gpu = other_gpu(sel(at)["gpu"])
    at.selectbox(key="sb_gpu").set_value(gpu)
    at.number_input(key="sb_batch").set_value(48)
    at.number_input(key="sb_prompt").set_value(2000)
    at.number_input(key="sb_output").set_value(300)
    at.selectbox(key="sb_kv").set_value("fp8")
    at.run()
    no_exception(at)
    s = sel(at)
    assert (s["gpu"], s["batch"], s["prompt"], s["output"], s["kv_dtype"]) == (gpu, 48, 2000, 300, "fp8")
    kw = {"weights": s["weights"], "kv_dtype": "fp8", "engine": s["engine"], "tp": s["tp"]}
    p = api.plan(s["model"], gpu, 48, 2000, 300, gpus=s["gpus"], **kw)
    r = api.plan_request(PlanRequest.from_params(at.session_state["selection"].request().to_params()))
    shown = metrics(at)
    assert shown["TTFT mean"] == fmt.ms(p["ttft_s"])  # the headline: the simulated benchmark mean
    assert shown["TTFT lower bound"] == fmt.ms(p["ttft_lower_bound_s"])
    assert p["latency_source"].startswith("simulated: 48 clients")
    assert shown["TPOT mean"] == fmt.ms(p["tpot_s"])
    assert shown["Output tokens/s"] == fmt.per_s(p["deployment_output_tokens_per_s"])
    assert shown["Requests/s"] == fmt.per_s(p["deployment_requests_per_s"], 2)
    assert shown["$ / 1M output tokens"] == fmt.usd(p["cost_usd_per_1m_output_tokens"])
    assert shown["Largest batch"] == fmt.count(p["max_batch"])
    # the plan's own memory model (the engine version's settings), the one its largest batch comes from
    assert shown["Longest context"] == fmt.count(r.memory.max_context_tokens)
    assert r.as_dict()["max_batch"] == p["max_batch"]  # the page's request is the test's request
    table = at.dataframe[0].value
    assert table.loc[table["metric"] == "KV cache per GPU", "value"].item() == fmt.gib(p["kv_cache_bytes_per_gpu"])


def test_does_not_fit_is_a_result_not_an_error():
    at = app()
    at.number_input(key="sb_batch").set_value(65536)
    at.number_input(key="sb_prompt").set_value(1 << 20)
    at.run()
    no_exception(at)
    assert any("Does not fit" in w.value for w in at.warning)


def test_choices_persist_across_pages_and_reach_the_url():
    at = app()
    at.number_input(key="sb_batch").set_value(12)
    at.number_input(key="sb_output").set_value(99)
    at.run()
    at.switch_page("dashboard/pages/learn.py").run()
    no_exception(at)
    s = sel(at)
    assert (s["batch"], s["output"]) == (12, 99)
    assert at.query_params["batch"] in ("12", ["12"]) and at.query_params["output"] in ("99", ["99"])
    p = api.plan(s["model"], s["gpu"], 12, s["prompt"], 99, weights=s["weights"], kv_dtype=s["kv_dtype"],
                 engine=s["engine"], tp=s["tp"])
    assert metrics(at)["Prefill (TTFT)"] == fmt.ms(p["ttft_lower_bound_s"])  # the Learn page: one prompt alone


def test_url_parameters_are_read_and_bad_ones_warn():
    gpu = other_gpu(next(iter(profiles.gpus())))
    at = app(batch=7, gpu=gpu, kv="fp8", tp="3", prompt="lots")
    no_exception(at)
    s = sel(at)
    assert (s["batch"], s["gpu"], s["kv_dtype"], s["tp"]) == (7, gpu, "fp8", 1)
    warned = " ".join(w.value for w in at.warning)
    assert "tp=3" in warned and "prompt=lots" in warned


def _upload(at, name: str, data: bytes):
    at.file_uploader(key="sb_upload").set_value((name, data, "application/json"))
    at.run()
    no_exception(at)
    return at


def _llama_config() -> dict:
    return json.loads((profiles.ROOT / "models" / sel(app())["model"] / "config.json").read_text())


@pytest.mark.parametrize("name,data,expect", [
    ("config.json", b"this is not json {", "not valid JSON"),
    ("config.json", b"[1, 2, 3]", "JSON object"),
    ("big.json", b" " * 2_100_000 + b"{}", "too large"),
    ("config.json", json.dumps({"architectures": ["BertModel"], "model_type": "bert"}).encode(), "config.json"),
    ("config.json", b"\xff\xfe\x00garbage", "config.json"),
])
def test_bad_uploads_show_an_error_and_the_app_keeps_working(name, data, expect):
    at = _upload(app(), name, data)
    errors = text(" ".join(e.value for e in at.error))
    assert "Upload rejected" in errors and expect in errors
    # the main area says so too, and shows no plan: the previous model's "Fits" would pass for this file's
    assert len(at.main.error) == 1 and "no plan is shown" in text(at.main.error[0].value)
    assert not at.success and "TTFT mean" not in metrics(at)


def test_impossible_values_in_an_upload_name_the_field():
    cfg = _llama_config()
    cfg["num_key_value_heads"] = cfg["num_attention_heads"] + 1
    at = _upload(app(), "config.json", json.dumps(cfg).encode())
    assert any("num_key_value_heads" in text(e.value) for e in at.error)
    cfg["num_key_value_heads"], cfg["hidden_size"] = 8, -4096
    at = _upload(app(), "config.json", json.dumps(cfg).encode())
    assert any("hidden_size" in text(e.value) for e in at.error)


def test_a_good_upload_is_planned_exactly_like_the_core():
    cfg = _llama_config()
    cfg["num_hidden_layers"] = 20
    text = json.dumps(cfg)
    at = _upload(app(), "my-model.json", text.encode())
    assert not at.error
    s = sel(at)
    assert s["model"].startswith("my-model")
    spec = ModelSpec.from_json_text(text, name=s["model"])
    p = api.plan(spec, s["gpu"], s["batch"], s["prompt"], s["output"], gpus=s["gpus"], weights=s["weights"],
                 kv_dtype=s["kv_dtype"], engine=s["engine"], tp=s["tp"])
    assert metrics(at)["TPOT mean"] == fmt.ms(p["tpot_s"])


def test_attention_page_shows_the_core_kv_bytes_per_token():
    at = app("attention")
    at.selectbox(key="sb_kv").set_value("fp8").run()
    no_exception(at)
    s = sel(at)
    ins = api.inspect_model(s["model"], kv_dtype="fp8", engine=s["engine"], weights=s["weights"])
    own = next(v for k, v in metrics(at).items() if k.startswith("as shipped"))
    assert own == f"{ins['kv_bytes_per_token'] / 1024:,.0f} KiB"
    table = at.dataframe[0].value
    row = table[table["variant"].str.startswith("as shipped")].iloc[0]
    assert row["kv_bytes_per_token"] == round(ins["kv_bytes_per_token"], 3)
    # the MLA what-if caches one latent per token: the row names the latent, not a KV-head count
    mla = table[table["variant"].str.startswith("MLA")].iloc[0]
    assert mla["cached_per_token_per_layer"] == "latent 512 + rope 64"
    assert row["cached_per_token_per_layer"] == f"K+V: 2 x {ins['num_kv_heads']} heads x {ins['head_dim']}"


def test_quantization_page_offload_equals_the_core():
    at = app("quantization")
    ggufs = [f for f, v in profiles.formats().formats.items() if v.family == "gguf"]
    if not ggufs:
        pytest.skip("no GGUF formats bundled")
    at.selectbox(key="q_gguf").set_value(ggufs[-1])
    at.number_input(key="q_ctx").set_value(8192)
    at.run()
    no_exception(at)
    s = sel(at)
    best = api.gguf_offload(s["model"], s["gpu"], weights=ggufs[-1], context=8192, kv_dtype="fp16")
    assert metrics(at)["Layers on the GPU"] == f"{best['gpu_layers']} / {best['layers']}"
    assert metrics(at)["GPU memory used"] == fmt.gib(best["gpu_bytes"])
    formats = at.dataframe[0].value
    info = api.inspect_model(s["model"], weights=s["weights"])
    row = formats[formats["format"] == s["weights"]].iloc[0]
    assert row["bits_per_weight"] == round(info["bits_per_weight"], 3)


def test_tradeoffs_cost_table_equals_the_core():
    at = app("tradeoffs")
    at.number_input(key="sb_batch").set_value(16).run()
    no_exception(at)
    s = sel(at)
    cost = next(d.value for d in at.dataframe if "usd_per_1m_at_batch" in d.value.columns)
    # the sweep across GPUs is the mean-value model (the Plan page simulates the one plan it shows)
    p = api.plan(s["model"], s["gpu"], 16, s["prompt"], s["output"], weights=s["weights"], kv_dtype=s["kv_dtype"],
                 engine=s["engine"], tp=s["tp"], simulate=False)
    shown = cost.loc[cost["gpu"] == s["gpu"], "usd_per_1m_at_batch"].item()
    assert shown == pytest.approx(round(p["cost_usd_per_1m_output_tokens"], 4))


def test_validation_page_table_equals_the_core_summary():
    from planner import validate

    at = app("validation")
    no_exception(at)
    df = validate.validation_table()  # what the page shows: the end-to-end rows included
    assert not df.empty, "the repository carries measurements and reference slices"
    expected = validate.summary(df, by=("source", "metric", "gpu")).round(2).reset_index(drop=True)
    # the summary is the table with the datasheet columns (the end-to-end table comes before it)
    shown = next(d.value for d in at.dataframe if "datasheet_median_abs_error_pct" in d.value.columns)
    shown = shown.reset_index(drop=True)
    assert list(shown.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)


def validation_section(subheader: str, committed: str):
    """The Validation page, rendered without an error and showing ``subheader``, and the committed scored file
    (profiles/validation/``committed``) that section reads."""
    at = app("validation")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert subheader in labels(at, "subheader")
    return at, pd.read_csv(profiles.ROOT / "validation" / committed)


def test_validation_page_shows_the_runs_no_fit_has_seen():
    from planner import validate_external

    at, long = validation_section("Runs no fit has seen", "external-serving-predicted.csv")
    expected = validate_external.summary(long).round(2).reset_index(drop=True)
    shown = next(d.value for d in at.dataframe if "ttft_in_band" in d.value.columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    # every engine with runs, and a row over all of its runs
    assert set(shown.loc[shown["group"] == "all", "engine"]) == {"vllm", "sglang", "trtllm"}


def test_validation_page_shows_the_offline_throughput_cells():
    at, cells = validation_section("Offline throughput: TensorRT-LLM's published trtllm-bench tables",
                                   "trtllm-perf-overview-predicted.csv")
    shown = next(d.value for d in at.dataframe if list(d.value.columns) == ["group", "n", "median", "p90", "signed"])
    all_row = shown[shown["group"] == "all"].iloc[0]
    # the row over every cell: its count and its median |error| straight from the committed cells
    assert all_row["n"] == len(cells) >= 50
    assert all_row["median"] == pytest.approx(cells["error_pct"].abs().median(), abs=0.01)


def test_validation_page_shows_tensorrt_llms_pool_against_its_logs():
    at, logs = validation_section("TensorRT-LLM's KV pool against published start-up logs", "trtllm-startup.csv")
    shown = next(d.value for d in at.dataframe if "figure" in d.value.columns)
    pool_all = shown[(shown["figure"] == "pool") & (shown["rows"] == "all")].iloc[0]
    # every carried log is scored (each prints its pool), and the summary is the core's over them
    assert pool_all["n"] == len(logs) >= 20
    from planner import validate_trtllm_pool
    p = validate_trtllm_pool.predict(logs)
    assert pool_all["median_abs_pct"] == pytest.approx(p["error_pct"].abs().median(), abs=0.01)


def test_capacity_page_ranks_the_core_plans():
    from dashboard import core
    from planner import slo

    at = app("capacity")
    at.number_input(key="c_rate").set_value(2.0)
    at.button(key="c_submit").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    s = sel(at)
    shown = next(d.value for d in at.dataframe if "status" in d.value.columns)
    # the page passes the whole default space (empty lists) but for the KV dtypes: bf16 and fp8 unless narrowed,
    # whatever the sidebar's KV dtype
    df = slo.plan_capacity(profiles.load_model(s["model"]),
                           slo.Workload(request_rate_per_s=2.0, prompt_tokens=s["prompt"], output_tokens=s["output"]),
                           slo.Targets(ttft_s=0.5, tpot_s=0.05, e2e_s=None, percentile=90),
                           slo.Candidates(engine=s["engine"], kv_dtypes=("bf16", "fp8"), simulate_top=core.CAPACITY_SIMULATE_TOP,
                                          sim_requests=core.CAPACITY_SIM_REQUESTS))
    keys = ["status", "gpu", "tp", "pp", "weights", "kv_dtype"]
    assert shown[keys].astype(str).values.tolist() == df[keys].astype(str).values.tolist()
    assert {"fp8", "bf16"} <= set(df["kv_dtype"].dropna()) and {1, 8} <= set(df["tp"].dropna())
    ok = df[df["status"] != "rejected"]
    if len(ok):
        assert shown["usd_per_hour"].iloc[0] == pytest.approx(round(float(ok["usd_per_hour"].iloc[0]), 4))
        assert f"{int(ok['gpus_total'].iloc[0])} x {ok['gpu'].iloc[0]}" in at.success[0].value
    rejected = shown[shown["status"] == "rejected"]
    assert (rejected["reason"].str.len() > 0).all(), "every rejected plan says why"


def test_no_widget_combination_in_the_sidebar_shows_a_traceback():
    at = app()
    for engine in ("transformers", "paged"):
        for tp in (16, 1):
            at.selectbox(key="sb_engine").set_value(engine)
            at.selectbox(key="sb_tp").set_value(tp)
            at.selectbox(key="sb_kv").set_value("int4")
            at.run()
            no_exception(at)
    at.selectbox(key="sb_weights").set_value(list(profiles.formats().formats)[-1]).run()
    no_exception(at)


class _FakeNvml:
    """Stands in for pynvml: one GPU named as NVML names a bundled profile's card."""

    def __init__(self, name: str, free: float, total: float):
        self.name, self.free, self.total = name, free, total

    def nvmlInit(self):  # noqa: N802 - pynvml's names
        pass

    def nvmlShutdown(self):  # noqa: N802
        pass

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return i

    def nvmlDeviceGetName(self, h):  # noqa: N802
        return self.name.encode()

    def nvmlDeviceGetMemoryInfo(self, h):  # noqa: N802
        return type("Mem", (), {"free": self.free, "total": self.total})()


def test_a_gpu_nvml_sees_is_shown_with_its_free_memory_and_preselected(monkeypatch):
    import sys

    from dashboard import state

    gpu = next((g for g in profiles.gpus().values() if g.nvml_names), None)
    if gpu is None:
        pytest.skip("no bundled GPU profile names its NVML name")
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(gpu.nvml_names[0], 30 * 2**30, 80 * 2**30))
    state.nvml_gpu.clear()
    try:
        at = app()
        no_exception(at)
        shown = " ".join(i.value for i in at.sidebar.info)
        assert gpu.nvml_names[0] in shown and "30.0 GiB free" in shown
        assert sel(at)["gpu"] == gpu.id, "preselected on a fresh session"
        other = other_gpu(gpu.id)
        at.selectbox(key="sb_gpu").set_value(other).run()
        assert sel(at)["gpu"] == other
        at.button(key="sb_use_nvml").click().run()
        no_exception(at)
        assert sel(at)["gpu"] == gpu.id
    finally:
        state.nvml_gpu.clear()


def test_no_nvml_means_no_gpu_box_and_no_error(monkeypatch):
    import sys

    from dashboard import state

    class Broken:
        def nvmlInit(self):  # noqa: N802
            raise OSError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", Broken())
    state.nvml_gpu.clear()
    try:
        at = app()
        no_exception(at)
        assert not at.error and not [i for i in at.sidebar.info if "This machine" in i.value]
    finally:
        state.nvml_gpu.clear()


def test_every_csv_download_is_injection_safe():
    from dashboard import tables

    df = pd.DataFrame({"model": ["=HYPERLINK(1)", "+1", "ok"], "headroom": [-1.5, 2.0, 3.0]})
    text = tables.to_csv(df)
    assert "'=HYPERLINK(1)" in text and "'+1" in text and "-1.5" in text and "'-1.5" not in text
    src = "".join(p.read_text() for p in (ROOT / "dashboard").rglob("*.py"))
    assert src.count("st.download_button") == 1, "every download goes through dashboard.tables.show"


def test_explain_panel_substitutes_this_plans_values_into_the_seed_formula():
    at = app()
    at.number_input(key="sb_batch").set_value(5)
    at.number_input(key="sb_prompt").set_value(700)
    at.number_input(key="sb_output").set_value(100)
    at.selectbox(key="sb_kv").set_value("fp16").run()
    no_exception(at)
    s = sel(at)
    ins = api.inspect_model(s["model"], kv_dtype="fp16", engine=s["engine"], context=800, batch=5,
                            weights=s["weights"])
    seed = 2 * ins["layers"] * ins["num_kv_heads"] * ins["head_dim"] * 800 * 5 * 2
    code = "\n".join(c.value for c in at.code)
    assert "2 x layers x kv_heads x head_dim" in code
    assert f"2 x {ins['layers']} x {ins['num_kv_heads']} x {ins['head_dim']} x 800 x 5 x 2 B" in code
    assert f"{seed:,.0f} B" in code
    p = api.plan(s["model"], s["gpu"], 5, 700, 100, gpus=s["gpus"], weights=s["weights"], kv_dtype="fp16",
                 engine=s["engine"], tp=s["tp"])
    assert f"TTFT = {fmt.ms(p['ttft_s'])}" in code
    table = at.dataframe[0].value
    share = table.loc[table["metric"] == "prefill share of GPU time", "value"].item()
    assert share == f"{p['prefill_share_of_gpu_time']:.1%}"


def test_tradeoffs_frontier_table_is_the_core_frontier():
    from planner.sweep import pareto_frontier, sweep

    at = app("tradeoffs")
    at.select_slider(key="to_maxb").set_value(64).run()
    no_exception(at)
    s = sel(at)
    gpus, fmts = at.multiselect(key="to_gpus").value, at.multiselect(key="to_fmts").value
    df = sweep(s["model"], gpus, (1, 2, 4, 8, 16, 32, 64), [s["prompt"]], [s["output"]], weights=fmts,
               kv_dtypes=s["kv_dtype"], tps=s["tp"], engine=s["engine"])
    front = pareto_frontier(df)
    shown = next(d.value for d in at.dataframe if "tokens_per_s_per_user" in d.value.columns)
    assert shown["batch"].tolist() == front["batch"].tolist()
    assert shown["gpu"].tolist() == front["gpu"].astype(str).tolist()
    assert shown["output_tokens_per_s_per_gpu"].tolist() == front["output_tokens_per_s_per_gpu"].round(3).tolist()


@pytest.mark.parametrize("page", PAGES)
def test_extreme_sidebar_values_never_show_a_traceback(page):
    at = app(page, tp=16, batch=65536, prompt=1 << 20, output=1 << 20, kv="int4", engine="transformers")
    no_exception(at)
    at.number_input(key="sb_batch").set_value(1)
    at.number_input(key="sb_prompt").set_value(1)
    at.number_input(key="sb_output").set_value(1)
    at.run()
    no_exception(at)



def test_cells_that_do_not_apply_show_a_dash_and_the_csv_leaves_them_empty():
    from dashboard import tables

    at = app("capacity")
    at.button(key="c_submit").click().run()
    no_exception(at)
    d = next(d for d in at.dataframe if "status" in d.value.columns)
    # plans rejected for memory have no replicas or price: the cell is missing, shown as a dash, not "None"
    assert d.value["usd_per_hour"].isna().any()
    assert d.proto.placeholder == tables.PLACEHOLDER == "—"
    assert all(x.proto.placeholder == "—" for x in at.dataframe)
    df = pd.DataFrame({"gpu": ["A", "B"], "usd_per_hour": [2.0, float("nan")], "tp": [1, 2]})
    assert tables.to_csv(df).splitlines()[2] == '"B","",2'  # text quoted, the number bare, the missing one empty


def test_engine_page_shows_the_cores_pool_and_checks_a_pasted_log():
    at = app("engine")
    no_exception(at)
    s = sel(at)
    c = api.capacity(s["model"], s["gpu"], tp=s["tp"], weights=s["weights"], kv_dtype=s["kv_dtype"], engine="vllm",
                     engine_version=str(profiles.engine_table("vllm").newest), entry_point="serve")
    assert metrics(at)["KV cache pool"] == fmt.tokens(c["kv_cache_tokens"])
    log = (ROOT / "profiles/engine-logs/vllm/vllm-0.17.1-llama-3.1-8b-instruct-a100-80gb-tp1.log").read_text()
    at.sidebar.selectbox(key="sb_model").set_value("Llama-3.1-8B").run()
    at.sidebar.selectbox(key="sb_gpu").set_value("A100-SXM-80GB").run()
    at.text_area(key="e_log").input(log)
    at.checkbox(key="e_log_gpu").check()
    at.get("form_submit_button")[0].click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    shown = next(d.value for d in at.dataframe if "line" in d.value.columns)
    assert "GPU KV cache size" in set(shown["line"]) and (shown["logged"] == 457024).any()


def test_engine_page_shows_tensorrt_llms_pool_with_its_fraction():
    at = app("engine")
    at.selectbox(key="e_engine").set_value("trtllm").run()
    at.number_input(key="e_frac").set_value(0.8).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    s = sel(at)
    c = api.capacity(s["model"], s["gpu"], tp=s["tp"], weights=s["weights"], kv_dtype=s["kv_dtype"], engine="trtllm",
                     engine_version=str(profiles.engine_table("trtllm").newest), free_gpu_memory_fraction=0.8)
    assert c["settings"]["free_gpu_memory_fraction"]["source"] == "given"
    assert metrics(at)["KV cache pool"] == fmt.tokens(c["kv_cache_tokens"])
    terms = next(d.value for d in at.dataframe if "term" in d.value.columns)
    assert {"weights", "non_torch", "activation_peak", "estimation_kv_cache"} <= set(terms["term"])


def test_engine_page_shows_a_bad_log_as_an_error_not_a_traceback():
    at = app("engine")
    at.text_area(key="e_log").input("this is not a start-up log")
    at.get("form_submit_button")[0].click().run()
    no_exception(at)
    assert at.error and "log" in at.error[0].value


def test_explain_panel_derives_the_throughput_from_the_simulated_e2e():
    at = app("plan")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    s = sel(at)
    r = api.plan(s["model"], s["gpu"], s["batch"], s["prompt"], s["output"], weights=s["weights"],
                 kv_dtype=s["kv_dtype"], engine=s["engine"], tp=s["tp"])
    line = next(ln for c in at.code for ln in c.value.splitlines() if ln.startswith("requests/s = batch / cycle"))
    # the simulated mean e2e the headline shows, and the requests/s it gives (Little's law), both in the line
    assert f"simulated mean e2e {r['e2e_latency_s']:.4f} s" in line
    assert line.endswith(f"{r['deployment_requests_per_s']:,.2f}/s")
