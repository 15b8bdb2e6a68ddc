"""The dashboard and the core share one request: the URL is the PlanRequest's params, the plan page
renders its PlanResult, and no page shows an error on valid input."""

from __future__ import annotations

import pytest
from test_app_pages import app

from dashboard import fmt
from planner import api, profiles
from planner.request import PlanRequest

PAGES = ["plan", "tradeoffs", "attention", "quantization", "engine", "capacity", "compare", "validation", "learn"]

pytestmark = pytest.mark.skipif("Llama-3.1-8B" not in profiles.model_names() or "H100-SXM" not in profiles.gpus(),
                                reason="needs the bundled Llama-3.1-8B and H100-SXM")


def _app(page: str | None = None, **query):
    return app(page, timeout=90, **query)


def _params(at) -> dict[str, str]:
    return {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}


def test_the_url_is_the_requests_params_and_opens_the_same_plan():
    at = _app(model="Llama-3.1-8B", gpu="H100-SXM", batch=12, prompt=700, output=90, kv="fp8", gpus=2)
    assert not at.exception
    req = at.session_state["selection"].request()
    assert PlanRequest.from_params(_params(at)) == req
    again = _app(**_params(at))
    assert again.session_state["selection"].request() == req
    r = api.plan_request(req)
    shown = {m.label: m.value for m in again.metric}
    assert shown["TTFT mean"] == fmt.ms(r.latency.ttft_s)
    assert shown["Longest context"] == fmt.count(r.memory.max_context_tokens)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_an_error_on_valid_input(page):
    at = _app(page, model="Llama-3.1-8B", gpu="H100-SXM", batch=8, prompt=512, output=64)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_plan_page_names_the_cache_auto_resolved_to():
    # Gemma-4-31B-IT-NVFP4 declares an fp8 kv_cache_scheme, which vLLM 0.14+ allocates under "auto" (the sidebar's
    # default); Llama-3.1-8B declares none: its auto cache is its own bf16
    at = _app(model="Gemma-4-31B-IT-NVFP4", gpu="H100-SXM", batch=8, prompt=512, output=64)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["selection"].kv_dtype == "auto"
    assert any("nvfp4 weights, fp8 (auto) KV" in c.value for c in at.caption), [c.value for c in at.caption][:3]
    at = _app(model="Llama-3.1-8B", gpu="H100-SXM", batch=8, prompt=512, output=64)
    assert any("bf16 weights, bf16 (auto) KV" in c.value for c in at.caption)
    at = _app(model="Gemma-4-31B-IT-NVFP4", gpu="H100-SXM", batch=8, prompt=512, output=64, kv="bf16")
    assert any(", bf16 KV," in c.value for c in at.caption)  # a given dtype is kept and shown as given


def test_the_other_pages_compute_with_the_cache_auto_resolves_to():
    # the Attention page's current choice under "auto" is the engine's cache: fp8 for Gemma-4-31B-IT-NVFP4 (its
    # fp8 kv_cache_scheme), and its bytes are the core's for fp8 (api.inspect_model at 576 tokens, batch 8)
    at = _app("attention", model="Gemma-4-31B-IT-NVFP4", gpu="H100-SXM", batch=8, prompt=512, output=64)
    assert not at.exception and not at.error, [e.value for e in at.error]
    fp8 = api.inspect_model("Gemma-4-31B-IT-NVFP4", kv_dtype="fp8", engine="paged", context=576, batch=8)
    assert any(f"Current choice: fp8, {fmt.gib(fp8['kv_cache_bytes'])} at batch 8" in c.value for c in at.caption), \
        [c.value for c in at.caption if "Current choice" in c.value]
