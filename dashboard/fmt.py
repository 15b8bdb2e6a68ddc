"""Number formats of the dashboard, shared with the tests so that both print the core's numbers alike.

SI units come in (bytes, seconds); GiB and ms only here, at the edge.
"""

from __future__ import annotations

import math
import re

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


def per_s(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}/s"


def usd(x: float) -> str:
    """Dollars; a GPU without a price in its profile gives exactly 0 (or NaN): shown as such, not $0."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "no price"
    return f"${x:,.3f}" if x < 100 else f"${x:,.0f}"


def count(n: float) -> str:
    return f"{int(n):,}"


def tokens(n: float) -> str:
    return f"{int(n):,} tokens"


def params(n: float) -> str:
    return f"{n / 1e9:,.2f} B" if n >= 1e9 else f"{n / 1e6:,.1f} M"
