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
