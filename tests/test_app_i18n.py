"""Issue 14, a bilingual dashboard: the language switch (sidebar, lang= in the URL), every t() string with
its Korean, each page in Korean without an error, and English exactly as before."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
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
        at.query_params[k] = v if isinstance(v, list) else str(v)
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

    for name in plan.LATENCY | plan.RATES:
        assert name in i18n.KO, name
    # the pages' row labels, notes and headers, the core's words shown in tables and legends, the label templates
    from dashboard.pages import capacity, compare, learn, quantization

    words = [label for label, *_ in compare.ROWS] + list(quantization.FAMILY_NOTES.values())
    words += [note for *_, note in learn.QUANT + learn.QAT_ROWS] + list(capacity.HEADERS.values())
    words += [helptext for _, helptext in capacity.SHORT.values()]
    words += ["compute", "memory", "calibrated", "datasheet", "meets", "meets (mean-value)", "rejected", "bound",
              "mean-value", "simulation", "5th-95th percentile", "model (max_position_embeddings)"]
    assert not [w for w in words if w not in i18n.KO]
    fields = re.compile(r"\{([^{}:!]*)[^{}]*\}")
    for template in i18n.TEMPLATES:
        assert sorted(fields.findall(template)) == sorted(fields.findall(i18n.KO[template])), template


def test_labels_built_around_numbers_are_matched_whole(monkeypatch):
    monkeypatch.setattr(i18n, "lang", lambda: "ko")
    assert i18n.label("as shipped: GQA (8 KV heads)") == "원래 구조: GQA (KV 헤드 8개)"
    assert i18n.label("this model (MHA)") == "이 모델 (MHA)"
    assert i18n.label("2.5th-97.5th percentile") == "2.5–97.5번째 백분위수"  # the band's range, fit_e2e.band_tail
    assert i18n.label("3rd-97th percentile") == "3–97번째 백분위수"
    assert i18n.label("EOS or max_tokens = 1,024") == "EOS 또는 max_tokens = 1,024"
    assert i18n.label("does not fit at this batch; no price in its profile") == "이 배치에서 들어가지 않음; 프로파일에 가격 없음"
    assert i18n.label("H100-SXM") == "H100-SXM" and i18n.label(3) == 3   # names and numbers stay


def test_one_english_label_can_have_two_korean_words_by_context(monkeypatch):
    # "GPUs" labels the sidebar's count of GPUs (and count columns) and the multiselects of which GPUs
    monkeypatch.setattr(i18n, "lang", lambda: "ko")
    monkeypatch.setattr(tables, "lang", lambda: "ko")
    assert i18n.t("GPUs") == "GPU 수" and i18n.t("GPUs", "list") == "GPU"
    assert i18n.t("Prompt tokens", "no such context") == i18n.KO["Prompt tokens"]  # unknown context: the plain key
    assert tables.localized("measured on") == "측정한 GPU"  # the bands table's list of GPUs, not a count
    monkeypatch.setattr(i18n, "lang", lambda: "en")
    assert i18n.t("GPUs", "list") == "GPUs"


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


def visible_text(at) -> list[str]:
    """Every string a page shows: text elements, metric labels, values and tooltips, widget labels and help,
    table headers (their column_config labels) and cells, and each chart's titles, axis titles, legend
    names, annotations and bar texts."""
    import json

    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "code", "success", "warning", "info", "error"):
        out += [str(e.value) for e in getattr(at, kind)]
    for m in at.metric:
        out += [m.label, str(m.value), m.proto.help or ""]
    for kind in ("button", "checkbox", "selectbox", "multiselect", "number_input", "radio", "text_input", "expander"):
        for e in getattr(at, kind):
            out += [str(getattr(e, "label", "") or ""), str(getattr(e.proto, "help", "") or "")]
    for d in at.dataframe:
        config = json.loads(d.proto.columns or "{}")
        order = list(d.proto.column_order) or [str(c) for c in d.value.columns]
        for c in d.value.columns:
            if str(c) not in order:
                continue
            entry = config.get(str(c)) or {}
            out.append(entry.get("label") or str(c))
            out.append(entry.get("help") or "")
            if not pd.api.types.is_numeric_dtype(d.value[c]):
                out += [str(x) for x in d.value[c].unique()]
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        lay = fig.get("layout", {})
        out += [str((lay.get(k) or {}).get("title", {}).get("text", "")) for k in ("xaxis", "yaxis")]
        out.append(str((lay.get("title") or {}).get("text", "")))
        out += [str(a.get("text", "")) for a in lay.get("annotations", [])]
        for trace in fig.get("data", []):
            out.append(str(trace.get("name", "")))
            text = trace.get("text")
            out += [str(x) for x in text] if isinstance(text, list) else [str(text or "")]
            if trace.get("orientation") == "h":
                out += [str(x) for x in trace.get("y", [])]
    return [s for s in out if s]


# English the pages showed in Korean before issue 14's last round (captions around live numbers, the Explain
# prose, chart titles and legends, table headers and categorical cells): none may come back. "=" marks a
# whole string (a legend entry, a cell), the others are looked for inside every string.
ENGLISH_BEFORE = {
    "plan": ["prefill: roofline", "decode step:", "Where the planner differs", "Efficiencies:", "in all\n", "mean TTFT =",
             "of each replica's busy time", "-bound", "=compute", "=memory", "planner (per GPU", "=calibrated"],
    "tradeoffs": ["=largest batch that fits", "$ per 1M output tokens,", "=tokens/s per user", "at largest", "=note",
                  "=does not fit at this batch", "=batch 32"],
    "attention": ["query heads", "as shipped", "KV heads)", "Current choice", "Largest batch that fits on", "cached",
                  "=variant", "=largest batch (requests)", "=requests", "KV bytes per token", "full)"],
    "quantization": ["Decode speed on", "usable", "16/32-bit floats", "Activation-aware", "fits on selected GPU", "=label",
                     "=family", "=note"],
    "engine": ["Measured spread", "subtracted from the budget", "'s default", "=setting", "=from", "=yes", "=no"],
    "capacity": ["Model:", "Ranked by the planner", "=meets", "=rejected", "=meets (mean-value)", "every bundled GPU",
                 "=status", "=why", "=$ per hour", "=batch per replica", "=USD per hour"],
    "compare": ["=figure", "=Fits", "=Memory per GPU", "=TTFT mean", "=yes", "=no", "· batch"],
    "validation": ["measured points for", "low (x prediction)", "held-out runs", "coverage on held-out", "=calibrated",
                   "=datasheet", "On the dashed line", "worst abs"],
    "learn": ["the ridge point is", "In this plan the KV cache", "Multi-head attention keeps", "cheaper per token",
              "requests/s", "per token", "Simulated by the core", "=teacher", "=student", "=EOS only", "EOS or max_tokens",
              "Bytes of", "=what it costs to make", "prompt tokens in one pass", "one token each", "=prefill", "=decode",
              "=this model (GQA (8 KV heads))", "quantize each layer", "calibration:"],
}
# Korean each of those pages shows in their place (a bound, a chart's legend, a cell)
KOREAN_NOW = {
    "plan": ["(프리필: 루프라인,", "플래너가 교과서 공식과 다른 점: ", "=연산", "=메모리"],
    "tradeoffs": ["=들어가는 최대 배치", "출력 토큰 100만 개당 $, "],
    "attention": ["쿼리 헤드", "=원래 구조: GQA (KV 헤드 8개)", "=MQA (KV 헤드 1개)"],
    "quantization": ["16/32비트 부동소수점", "=이름"],
    "engine": ["측정된 범위:", "=예산에서 뺌"],
    "capacity": ["=목표 충족", "=탈락", "=상태", "=이유", "플래너의 순위"],
    "compare": ["=지표", "=GPU당 메모리"],
    "validation": ["=보정됨", "=데이터시트", "측정점"],
    "learn": ["리지 포인트", "=선생 모델", "=학생 모델", "=EOS만", "=프리필", "=디코드", "=이 모델 (GQA (KV 헤드 8개))"],
}


def _compare_query() -> dict[str, object]:
    from urllib.parse import urlencode

    from planner.request import build

    plans = [build("Llama-3.1-8B", "H100-SXM", 32, 1024, 256, tp=1), build("Llama-3.1-8B", "H100-SXM", 64, 1024, 256, tp=2,
                                                                          gpus=2)]
    return {"cmp": [urlencode(p.to_params()) for p in plans]}


def _found(texts: list[str], needle: str) -> bool:
    return needle[1:] in texts if needle.startswith("=") else any(needle in s for s in texts)


@needs_profiles
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_in_korean(page):
    """Each page in Korean: no error, its Korean title and body, and none of the English it showed before
    (ENGLISH_BEFORE; the Korean in its place, KOREAN_NOW). Compare shows two saved plans."""
    at = _app(page, lang="ko", **(_compare_query() if page == "compare" else {}))
    assert not at.error, [e.value for e in at.error]
    texts = visible_text(at)
    assert not [s for s in ENGLISH_BEFORE[page] if _found(texts, s)], [s for s in ENGLISH_BEFORE[page] if _found(texts, s)]
    assert not [s for s in KOREAN_NOW[page] if not _found(texts, s)], [s for s in KOREAN_NOW[page] if not _found(texts, s)]
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


def test_a_plan_that_does_not_fit_says_why_and_offers_its_remedies_in_korean():
    # Llama-3.1-8B, 64 x (8,192 + 1,024) tokens on one H100: the core's reason and its remedy labels
    # (planner/planning.py, planner/remedies.py) through i18n.label's templates. The total (88.43 GiB) is over the
    # 72.88 GiB vLLM may use, and the engine's start-up pool (54.69 GiB, `capacity Llama-3.1-8B --gpu H100-SXM`)
    # holds 54.69 / (9,216 tokens x 128 KiB = 1.125 GiB) = 48.6: 48 requests
    at = _app(lang="ko", model="Llama-3.1-8B", gpu="H100-SXM", batch=64, prompt=8192, output=1024)
    assert not at.error
    warning = at.warning[0].value
    assert "GPU당" in warning and "이 길이에서 들어가는 최대 배치: 48" in warning and "needs" not in warning
    assert at.button(key="remedy_batch").label == "배치 48"
    assert at.button(key="remedy_context").label.startswith("프롬프트 ")
    captions = " ".join(c.value for c in at.caption)
    assert "fp8 KV 캐시 (bf16의 절반 바이트)" in captions and "(the largest that fits" not in captions
    assert "시뮬레이션: 클라이언트 64개의 닫힌 루프" in captions and "closed loop" not in captions
