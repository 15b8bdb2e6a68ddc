"""Number formats of the dashboard, shared with the tests so that both print the core's numbers alike.

SI units come in (bytes, seconds); GiB and ms only here, at the edge.
"""

from __future__ import annotations

import math

GIB = 2**30


def gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.2f} GiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def per_s(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}/s"


def usd(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"${x:,.3f}" if x < 100 else f"${x:,.0f}"


def count(n: float) -> str:
    return f"{int(n):,}"


def tokens(n: float) -> str:
    return f"{int(n):,} tokens"


def params(n: float) -> str:
    return f"{n / 1e9:,.2f} B" if n >= 1e9 else f"{n / 1e6:,.1f} M"
