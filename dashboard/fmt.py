"""Number formats of the dashboard, shared with the tests so that both print the core's numbers alike.

SI units come in (bytes, seconds); GiB and ms only here, at the edge.

Per locale (dashboard/i18n.py): Korean uses the same digits and thousands separators; the symbols (ms,
GiB, $) stay and the words around a number are translated ("/s" -> "/초", "tokens" -> "토큰"). English
is exactly what it always was (the tests compare these strings with the core's numbers).
"""

from __future__ import annotations

import math
import re

from dashboard.i18n import lang

GIB = 2**30
# every character markdown, GitHub's extensions or Streamlit's own syntax give a meaning to: links and
# images ([ ] ( ) !), emphasis (* _ ~), code (`), HTML and autolinks (< > : .), headings, lists and
# tables (# + - |), LaTeX ($), colours, icons and emoji (: [ ]), entities (&), directives ({ })
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
# GitHub's autolinks (https://..., www...., a@b.c) and the emoji and icon shortcodes (:name:) are found in
# the text after the escapes are resolved: an invisible word joiner after ':' and '@' and in 'www.' breaks
# them and shows nothing
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=[:@])|(?<=www)(?=\.)", re.IGNORECASE)


def plain(text) -> str:
    """User-controlled text (a query value, a file or model name, a config string, an input error's
    message) for a markdown sink (st.markdown, st.error, st.caption...): one line, every markdown
    character escaped and every autolink or shortcode broken, so it renders as the literal text and
    never as a link, image, icon or style."""
    # the word joiner is the mark this function inserts: one in the user's text (invisible anyway) goes
    one_line = _AUTOLINK.sub(WORD_JOINER, " ".join(str(text).replace(WORD_JOINER, "").split()))
    return _MARKDOWN.sub(r"\\\1", one_line)


def gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.2f} GiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def duration(seconds: float) -> str:
    """ms below 10 s, seconds above (a long end-to-end latency stays readable in a narrow tile)."""
    return ms(seconds) if seconds < 10 else f"{seconds:,.2f} s"


# the unit words shown beside numbers (tiles, the plan's table), English -> Korean; units not listed stay
UNITS_KO = {"/s": "/초", "tokens": "토큰", "requests": "요청", "tokens/s": "토큰/초", "requests/s": "요청/초",
            "tokens/s per user": "사용자당 토큰/초", "tokens/s per GPU": "GPU당 토큰/초",
            "$ / 1M output tokens": "출력 토큰 100만 개당 $", "$ / 1M tokens (in+out)": "토큰 100만 개당 $ (입력+출력)",
            "$ per 1M output tokens": "출력 토큰 100만 개당 $", "$ per hour": "시간당 $", "USD": "USD",
            "s": "초", "GPU(s)": "GPU", "replicas": "레플리카", "no price": "가격 없음", "n/a": "해당 없음"}


def unit(text: str) -> str:
    """A unit or the words around a number in the session's language ("requests/s" -> "요청/초")."""
    return UNITS_KO.get(text, text) if lang() == "ko" else text


def per_s(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}" + unit("/s")


def rate(x: float, what: str = "tokens", digits: int = 0) -> str:
    """A rate with its unit word: ``rate(1234.5)`` -> "1,235 tokens/s" (Korean "1,235 토큰/초")."""
    return f"{x:,.{digits}f} " + unit(f"{what}/s")


def usd(x: float) -> str:
    """Dollars; a GPU without a price in its profile gives exactly 0 (its $ per hour) or NaN (its costs per
    token): shown as such, not $0."""
    if x == 0 or math.isnan(x):
        return unit("no price")
    if not math.isfinite(x):
        return unit("n/a")
    return f"${x:,.3f}" if x < 100 else f"${x:,.0f}"


def count(n: float) -> str:
    return f"{int(n):,}"


def tokens(n: float) -> str:
    return f"{int(n):,} " + unit("tokens")


def params(n: float) -> str:
    return f"{n / 1e9:,.2f} B" if n >= 1e9 else f"{n / 1e6:,.1f} M"
