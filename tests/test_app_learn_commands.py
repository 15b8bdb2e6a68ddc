"""AppTest: the Learn page's two sections on how decoding stops and on QAT vs PTQ, the commands panel
(dashboard/commands_panel.py) showing the core's commands, and the Capacity page's max_tokens input."""

from __future__ import annotations

import pytest
from test_app_pages import app, no_exception, sel

from planner import profiles

pytestmark = pytest.mark.skipif(not profiles.model_names() or not profiles.gpus(), reason="no bundled profiles")


def test_learn_page_shows_the_two_new_sections_without_errors():
    at = app("learn")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    headers = [h.value for h in at.header]
    assert "7. How decoding stops" in headers
    assert "8. Quantization-aware training vs post-training quantization" in headers
    # the stopping table's numbers are the core's for the sidebar's deployment
    from dashboard import core
    from planner import api
    from planner.memory import Deployment
    from planner.traffic import stopping_example

    s = sel(at)
    plan = api.build_plan(core.spec(s["model"], s["text"]), s["gpu"],
                          Deployment(weights=s["weights"], kv_dtype=s["kv_dtype"], tp=s["tp"]))
    r = stopping_example(plan, s["prompt"], s["output"], min(s["batch"], 16), 2 * s["output"])
    shown = next(d.value for d in at.dataframe if "stops at" in d.value.columns)
    assert shown["e2e_p99_s"].tolist() == [round(r["eos"]["e2e_p99_s"], 3), round(r["capped"]["e2e_p99_s"], 3)]
    qat = next(d.value for d in at.dataframe if "stored as" in d.value.columns)
    assert "Q4_0" in set(qat["stored as"])


def _panel():
    from dashboard.commands_panel import render
    from dashboard.state import Selection

    render(Selection(model="Llama-3.1-8B", text="", gpu="H100-SXM", gpus=2, tp=2, weights="bf16", kv_dtype="fp8",
                     engine="paged", batch=32, prompt=2000, output=500))


def test_commands_panel_shows_the_core_commands():
    from streamlit.testing.v1 import AppTest

    from planner.commands import commands
    from planner.memory import Deployment

    at = AppTest.from_function(_panel, default_timeout=60).run()
    no_exception(at)
    c = commands("Llama-3.1-8B", "H100-SXM", Deployment(kv_dtype="fp8", tp=2), 2000, 500, 32)
    assert [x.value for x in at.code] == [c.serve.shell, c.bench.shell]
    at.selectbox(key="cmd_engine").set_value("sglang").run()
    assert at.code[0].value.startswith("python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B")


def test_capacity_page_passes_max_tokens_to_the_core():
    at = app("capacity")
    at.number_input(key="c_rate").set_value(2.0)
    at.number_input(key="c_max_tokens").set_value(64)
    at.button(key="c_submit").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    from dashboard import core

    s = sel(at)
    kvs = tuple(at.multiselect(key="c_kv").value)  # the page's default KV dtypes (bf16 and fp8)
    df = core.capacity_plan(s["model"], s["text"], 2.0, s["prompt"], s["output"], 0.5, 0.05, None, 90, (), (), (), kvs,
                            s["engine"], "fixed", core.CAPACITY_SIMULATE_TOP, core.CAPACITY_SIM_REQUESTS, "vllm", (), 64)
    assert df.attrs["workload"]["max_tokens"] == 64
    shown = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert shown["gpu"].astype(str).tolist() == df["gpu"].astype(str).tolist()


def test_the_plan_page_offers_the_command_of_its_plan():
    at = app("plan")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    # the default plan fits: its vLLM command is on the page, with the sidebar's TP and batch pinned
    codes = [c.value for c in at.code if c.value.startswith("vllm serve ")]
    assert codes and "--max-num-seqs 32" in codes[0], [c.value[:80] for c in at.code]


def test_the_learn_page_s_textbook_kv_uses_the_dtype_table():
    # int4 KV: 4 bits + a 16-bit scale per 32 values = 4.5 bits = 0.5625 B per element (planner.kv KV_DTYPES), not 1 B;
    # Llama-3.1-8B, batch 32 x (1,024 + 256) tokens: 2 x 32 x 8 x 128 x 1,280 x 32 x 0.5625 = 1.41 GiB
    at = app("learn", kv="int4")
    no_exception(at)
    code = next(c.value for c in at.code if c.value.startswith("2 x layers x kv_heads"))
    assert "x 0.5625 = 1.41 GiB" in code, code
