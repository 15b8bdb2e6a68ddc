"""A permanent fuzz of the command line (scripts/fuzz_cli.py runs the large budget): every bundled
config with one field set to an arbitrary JSON value, through every config command, and every number
flag of every command with arbitrary text. Each run must exit 0 with finite, non-negative figures or
exit 2 with one line naming a field; never a traceback, a hang or a NaN.

The example budget is fixed and derandomised, so CI runs the same few seconds every time; the cases
the reliability review named are run explicitly.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import profiles
from scripts import fuzz_cli as fz

pytestmark = pytest.mark.skipif(not profiles.model_names() or fz.GPU not in profiles.gpus(),
                                reason="needs the bundled configs and the H100-SXM profile")
CONFIGS = fz.bundled_configs() if profiles.model_names() else {}
FIELDS = sorted({k for c in CONFIGS.values() for k in c} | set(fz.EXTRA_KEYS))
CI = settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.one_of(
    st.sampled_from(fz.VALUES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)


def assert_clean(case: fz.Case, tmp_path: Path) -> fz.Outcome:
    res = fz.run_case(case, tmp_path, timeout_s=60)
    assert not res.problems, (case.label, res.problems, res.traceback[-1500:], res.stderr[-500:])
    return res


@CI
@given(model=st.sampled_from(sorted(CONFIGS) or ["none"]), key=st.sampled_from(FIELDS or ["none"]),
       value=json_values, command=st.sampled_from(sorted(fz.CONFIG_COMMANDS)))
def test_one_config_field_set_to_anything(tmp_path, model, key, value, command):
    cfg = {**CONFIGS[model], key: value}
    assert_clean(fz.Case(f"{model} {key}={value!r}", list(fz.CONFIG_COMMANDS[command]), fz._dump(cfg)), tmp_path)


@CI
@given(command=st.sampled_from(sorted(fz.FLAGS)), data=st.data())
def test_any_text_in_a_number_flag(tmp_path, command, data):
    flag = data.draw(st.sampled_from(fz.FLAGS[command]))
    value = data.draw(st.one_of(st.sampled_from(fz.BAD_NUMBERS),
                                st.integers(-(2**66), 2**66).map(str),
                                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                st.text(alphabet="0123456789-.,e+ x", max_size=10)))
    args = {**fz.BASE_ARGS[command], flag: value}
    argv = [command, "Llama-3.1-8B", *[x for kv in args.items() for x in kv], "--json"]
    assert_clean(fz.Case(f"{command} {flag}={value!r}", argv), tmp_path)


def _specials() -> list[tuple[str, str]]:
    return fz.special_texts(CONFIGS["Qwen3-30B-A3B"]) if "Qwen3-30B-A3B" in CONFIGS else []


@pytest.mark.parametrize("label, text", _specials(), ids=[s[0] for s in _specials()])
def test_the_configs_the_review_named(tmp_path, label, text):
    """5,000-digit numbers, 100,000-deep nesting, layer_types of dicts, zero periods, binary, truncated."""
    res = assert_clean(fz.Case(label, list(fz.CONFIG_COMMANDS["inspect"]), text), tmp_path)
    assert res.rc in (0, 2)


@pytest.mark.parametrize("key, value", [
    ("moe_intermediate_size", 10**7), ("n_shared_experts", 10**6), ("shared_expert_intermediate_size", 4 * 10**6),
    ("num_experts", 16_384), ("q_lora_rank", 2**63), ("hidden_size", 2**63 - 1), ("max_position_embeddings", -5),
    ("decoder_sparse_step", 0), ("num_experts_per_tok", 2**63),
])
def test_unbounded_sizes_give_a_refusal_or_non_negative_figures(tmp_path, key, value):
    """The review's 'Fits: -75.00 GiB', 'TTFT -24.50 ms' and 'Longest context -5': now refused or sane."""
    cfg = {**CONFIGS["Qwen3-30B-A3B"], key: value}
    res = assert_clean(fz.Case(key, list(fz.CONFIG_COMMANDS["plan"]), fz._dump(cfg)), tmp_path)
    if res.rc == 2:
        assert key in res.stderr


def test_the_checker_catches_what_it_must():
    """The fuzz's own oracle: a negative or NaN figure is caught, a signed headroom is not."""
    assert fz.bad_figures({"ttft_s": -1.0}) == ["ttft_s=-1.0"]
    assert fz.bad_figures({"a": [1, {"b": math.nan}]}) == ["a[1].b=nan"]
    assert fz.bad_figures({"headroom_bytes_per_gpu": -5.0, "fits": False, "name": "-x"}) == []
    assert fz.ERROR_LINE.match("error: config.json:hidden_size: must be a whole number (fix)")
    assert not fz.ERROR_LINE.match("usage: python -m planner ...")


def test_the_large_budget_script_covers_20000_distinct_cases():
    assert len(fz.all_cases()) >= 20_000
