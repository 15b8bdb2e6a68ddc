"""Issue 14, a bilingual dashboard: the language switch (sidebar, lang= in the URL), every t() string with
its Korean, each page in Korean without an error, and English exactly as before."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dashboard import fmt, i18n, state, tables
from planner import profiles

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = ["plan", "tradeoffs", "attention", "quantization", "engine", "capacity", "compare", "validation", "learn"]
# each page's title in Korean (its st.title, and its entry in the navigation)
TITLES = {"plan": "배포 하나 계획하기", "tradeoffs": "트레이드오프", "attention": "어텐션과 KV 캐시",
          "quantization": "양자화", "engine": "엔진 KV 풀", "capacity": "용량 계획", "compare": "계획 비교",
          "validation": "검증", "learn": "학습"}
# one label only the page's body draws, late in the page, in Korean: (kind, pattern)
KO_ELEMENT = {
    "plan": ("metric", r"^최대 배치$"),
    "tradeoffs": ("subheader", r"^GPU별 출력 토큰 100만 개당 비용$"),
    "attention": ("subheader", r"^KV 캐시 dtype$"),
    "quantization": ("metric", r"^GPU에 올린 레이어$"),
    "engine": ("metric", r"^KV 캐시 풀$"),
    "capacity": ("subheader", r"^후보 [\d,]+개 전체, 순위순$"),
    "validation": ("subheader", r"^지표와 GPU별 오차$"),
    "learn": ("header", r"^5\. 지식 증류: 선생 모델과 학생 모델$"),
}

needs_profiles = pytest.mark.skipif(not profiles.model_names() or not profiles.gpus(),
                                    reason="no bundled profiles under profiles/models or profiles/gpus")


def _app(page: str | None = None, **query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    if page and page != "plan":
        at.switch_page(f"dashboard/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _labels(at, kind: str) -> list[str]:
    return [e.label if kind == "metric" else e.value for e in getattr(at, kind)]


def _qp(at) -> dict[str, str]:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def t_literals() -> dict[str, str]:
    """Every string literal passed to t() in app.py and dashboard/, with the file it is in."""
    found = {}
    for path in [ROOT / "app.py", *sorted((ROOT / "dashboard").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # t(name) of a variable (a figure's title, a table row) is checked by the tests below
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "t" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, path.name)
    return found


def test_every_t_string_has_a_korean_entry_with_the_same_placeholders():
    found = t_literals()
    assert len(found) > 200
    missing = sorted(f"{where}: {text!r}" for text, where in found.items() if text not in i18n.KO)
    assert not missing, missing
    fields = re.compile(r"\{([^{}:!]*)[^{}]*\}")
    for text in found:
        assert sorted(fields.findall(text)) == sorted(fields.findall(i18n.KO[text])), text
        assert i18n.KO[text].strip(), text


def test_the_translated_non_literals_have_korean_too():
    """Strings translated through a variable: the GPU form's labels and help, the plan table's rows."""
    for label, _k, _d, _lo, _hi, helptext in state.GPU_FORM:
        assert label in i18n.KO and helptext in i18n.KO
    from dashboard.pages import plan  # noqa: F401 - the module draws nothing outside a Streamlit run

    for name in plan.LATENCY | plan.FITTING_ONLY:
        assert name in i18n.KO, name


def test_outside_a_streamlit_run_everything_is_english():
    assert i18n.lang() == "en" and i18n.LANGS == ("en", "ko")
    assert i18n.t("Plan one deployment") == "Plan one deployment"
    assert fmt.per_s(1234.4) == "1,234/s" and fmt.tokens(5) == "5 tokens" and fmt.usd(0) == "no price"
    assert tables.localized(tables.header("ttft_p90_ms")) == "TTFT p90 (ms)"


def test_korean_units_and_headers(monkeypatch):
    monkeypatch.setattr(fmt, "lang", lambda: "ko")
    monkeypatch.setattr(tables, "lang", lambda: "ko")
    monkeypatch.setattr(i18n, "lang", lambda: "ko")
    assert fmt.per_s(1234.4) == "1,234/초" and fmt.rate(12.5, "requests", 1) == "12.5 요청/초"
    assert fmt.unit("tokens/s") == "토큰/초" and fmt.unit("$ / 1M output tokens") == "출력 토큰 100만 개당 $"
    assert fmt.ms(0.01234) == "12.34 ms" and fmt.gib(2**31) == "2.00 GiB"   # the symbols stay
    assert fmt.usd(0) == "가격 없음" and fmt.tokens(1024) == "1,024 토큰"
    assert tables.localized(tables.header("output_tokens_per_s_per_gpu")) == "GPU당 출력 토큰/초"   # its own entry
    assert tables.localized(tables.header("ttft_p90_ms")) == "TTFT p90 (ms)"
    assert tables.localized(tables.header("prompt_tokens")) == "프롬프트 토큰"   # word by word
    assert tables.localized("metric") == "지표"


@needs_profiles
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_in_korean(page):
    at = _app(page, lang="ko")
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key="lang").value == "ko"
    assert at.radio(key="lang").format_func("ko") == "한국어"
    assert [x.value for x in at.title] == [TITLES[page]]
    if page in KO_ELEMENT:
        kind, pattern = KO_ELEMENT[page]
        assert any(re.search(pattern, x) for x in _labels(at, kind)), _labels(at, kind)
    assert _qp(at).get("lang") == "ko"


@needs_profiles
def test_english_is_the_default_and_leaves_no_lang_in_the_url():
    at = _app()
    assert at.radio(key="lang").value == "en"
    assert [x.value for x in at.title] == ["Plan one deployment"]
    assert "lang" not in _qp(at)
    assert "Largest batch" in [m.label for m in at.metric]


@needs_profiles
def test_the_language_survives_the_url_round_trip_and_the_switch():
    at = _app(lang="ko")
    again = _app(**_qp(at))
    assert again.radio(key="lang").value == "ko" and again.title[0].value == TITLES["plan"]
    again.radio(key="lang").set_value("en").run()
    assert again.title[0].value == "Plan one deployment" and "lang" not in _qp(again)
    again.radio(key="lang").set_value("ko").run()
    assert again.title[0].value == TITLES["plan"] and _qp(again)["lang"] == "ko"


@needs_profiles
def test_the_sidebar_keeps_its_choices_across_a_language_switch():
    at = _app(batch="12")
    at.radio(key="lang").set_value("ko").run()
    assert at.number_input(key="sb_batch").value == 12 and _qp(at)["batch"] == "12"
    assert "최대 배치" in [m.label for m in at.metric]


@needs_profiles
@pytest.mark.parametrize("bad", ["fr", "<b>x</b>", ""])
def test_a_bad_lang_warns_and_stays_english(bad):
    at = _app(lang=bad)
    assert not at.error
    warned = " ".join(w.value for w in at.warning)
    assert "lang" in warned and "ignored" in warned
    assert at.radio(key="lang").value == "en" and at.title[0].value == "Plan one deployment"


def test_chart_titles_follow_the_language(monkeypatch):
    import pandas as pd

    from dashboard import figures

    parts = pd.DataFrame({"component": ["weights", "KV cache"], "bytes": [2**33, 2**32]})
    assert figures.memory_bar(parts, 2**35).layout.title.text == "Memory per GPU"
    monkeypatch.setattr(i18n, "lang", lambda: "ko")
    fig = figures.memory_bar(parts, 2**35)
    assert fig.layout.title.text == "GPU당 메모리" and [b.name for b in fig.data] == ["가중치", "KV 캐시"]


def test_no_korean_string_draws_strikethrough():
    # Streamlit's markdown strikes through text between two tildes: "131 ms~499 ms; 4.9 ms~14.6 ms" did;
    # ranges are written with an en dash
    assert not [k for k, v in i18n.KO.items() if "~" in v]
