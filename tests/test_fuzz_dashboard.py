"""The dashboard's two doors for outside input, fuzzed: an uploaded config (any field set to anything,
any file name) and the URL's query parameters (any text). Every case is planned with finite,
non-negative figures or refused with a PlannerInputError naming the field; whatever the visitor sent
is shown as plain text (dashboard.fmt.plain), never as markdown. Fixed, derandomised budgets."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_app_pages import app, no_exception, text

from dashboard import core, fmt, state
from planner import api, profiles
from planner.errors import PlannerInputError
from scripts import fuzz_cli as fz

pytestmark = pytest.mark.skipif(not profiles.model_names() or not profiles.gpus(), reason="no bundled profiles")
CONFIGS = fz.bundled_configs() if profiles.model_names() else {}
FIELDS = sorted({k for c in CONFIGS.values() for k in c} | set(fz.EXTRA_KEYS))
CI = settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
NAME = re.compile(r"[A-Za-z0-9._+ -]+ \(uploaded\)")
MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$&")


def figures_ok(d: dict) -> list[str]:
    return fz.bad_figures({k: v for k, v in d.items() if isinstance(v, int | float)})


@CI
@given(model=st.sampled_from(sorted(CONFIGS) or ["none"]), key=st.sampled_from(FIELDS or ["none"]),
       value=st.one_of(st.sampled_from(fz.VALUES), st.integers(-(2**70), 2**70), st.text(max_size=8)),
       filename=st.one_of(st.just("config.json"), st.text(max_size=30).map(lambda s: s + ".json")))
def test_an_upload_is_planned_or_refused_cleanly(model, key, value, filename):
    data = fz._dump({**CONFIGS[model], key: value}).encode()
    try:
        name, text_ = core.check_upload(data, filename)
    except PlannerInputError as e:
        assert e.field and e.problem and "\n" not in str(e)
        return
    assert NAME.fullmatch(name), name  # a file name never carries markdown or HTML into the page
    spec = core.spec(name, text_)
    p = api.plan(spec, "H100-SXM" if "H100-SXM" in profiles.gpus() else next(iter(profiles.gpus())), 4, 512, 64)
    assert figures_ok({k: v for k, v in p.items() if "headroom" not in k}) == []


def test_the_reviews_uploads_are_refused_with_the_field():
    base = CONFIGS["Qwen3-30B-A3B"]
    for key, value in (("decoder_sparse_step", 0), ("moe_intermediate_size", 10**9), ("layer_types", [{}] * 48),
                       ("max_position_embeddings", -5)):
        with pytest.raises(PlannerInputError) as e:
            core.check_upload(json.dumps({**base, key: value}).encode(), "config.json")
        assert key in e.value.field
    with pytest.raises(PlannerInputError, match="nested"):
        core.check_upload(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "config.json")


def test_an_upload_is_named_by_its_file_or_its_name_or_path():
    cfg = dict(CONFIGS["Llama-3.1-8B"], _name_or_path="meta-llama/Llama-3.1-8B")
    assert core.upload_name("my-model.json", cfg) == "my-model (uploaded)"
    assert core.upload_name("config.json", cfg) == "Llama-3.1-8B (uploaded)"
    assert core.upload_name("config.json", {}) == "uploaded (uploaded)"
    assert core.upload_name("[x](https:--evil.example).json", {}) == "x-https---evil.example (uploaded)"


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text())
def test_plain_text_has_no_markdown_left(raw):
    out = fmt.plain(raw)
    # every markdown character is escaped; no autolink (scheme://, www., a@b) or :shortcode: survives
    assert all(out[i - 1] == "\\" for i, ch in enumerate(out) if ch in MD_SPECIAL and not _escaped_backslash(out, i))
    shown = text(out)
    assert shown == " ".join(raw.replace("\u2060", "").split())  # a word joiner of the user's is dropped
    assert "://" not in out.replace("\\", "") and "www." not in out.lower().replace("\\", "")
    assert not re.search(r"[@:][^\u2060]", out.replace("\\", "")), out


def _escaped_backslash(s: str, i: int) -> bool:
    """s[i] is the escaping backslash of the next character (an escape pair's first half)."""
    n = 0
    while i - n - 1 >= 0 and s[i - n - 1] == "\\":
        n += 1
    return s[i] == "\\" and n % 2 == 0


@CI
@given(name=st.sampled_from(state.PARAMS), raw=st.text(max_size=40))
def test_a_query_parameter_is_taken_or_refused(name, raw):
    try:
        value = state._parse_param(name, raw)
    except PlannerInputError as e:
        warning = state.param_warning(name, raw, e)
        assert "\n" not in warning and text(warning).startswith(f"URL parameter {name}=")
        return
    limits = {"tp": state.TP_OPTIONS, "model": state.model_names(), "gpu": state.gpu_ids(),
              "weights": state.format_ids(), "engine": ("paged", "transformers")}
    if name in limits:
        assert value in limits[name]
    elif name in state.INT_LIMITS:
        lo, hi = state.INT_LIMITS[name]
        assert lo <= value <= hi and not math.isnan(value)


@pytest.mark.parametrize("payload", ["[Session expired: log in](https://evil.example/login)",
                                     "![x](https://evil.example/track.png)", ":red[Account locked]"])
def test_a_query_value_is_shown_as_plain_text(payload):
    at = app(model=payload)
    no_exception(at)
    warning = next(w.value for w in at.warning if "URL parameter" in w.value)
    assert warning == state.param_warning("model", payload, _err(payload))
    assert text(warning).startswith(f"URL parameter model={payload} ignored")


def _err(raw: str) -> PlannerInputError:
    try:
        state._parse_param("model", raw)
    except PlannerInputError as e:
        return e
    raise AssertionError("a payload is not a model")


def test_attention_page_with_a_tp_no_variant_fits_says_why():
    if "falcon-7b" not in profiles.model_names():
        pytest.skip("needs falcon-7b (71 heads)")
    at = app("attention", model="falcon-7b", tp=2)
    no_exception(at)
    assert any("No attention variant" in w.value for w in at.warning)


def test_an_unpriced_gpu_shows_no_price_not_zero_dollars_or_nan():
    free = [g for g, s in profiles.gpus().items() if not s.price_usd_per_hour]
    if not free:
        pytest.skip("every bundled GPU has a price")
    at = app("learn", gpu=free[0], model="gpt2", batch=1)
    no_exception(at)
    shown = " ".join([m.value for m in at.metric] + [m.value for m in at.markdown])
    assert "no price" in shown and "nanx" not in shown and "$0.000" not in shown
