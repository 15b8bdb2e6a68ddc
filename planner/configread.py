"""Reading a config.json safely: the JSON text, then every value in it, through one validating reader.

The text: at most ``MAX_CONFIG_BYTES`` bytes, UTF-8, nested at most ``MAX_JSON_DEPTH`` deep (a real
config is 4 or 5), and an integer literal longer than 18 digits is read as a float (so a 5,000-digit
number is a value out of range, not a parser crash). The values: ``ConfigReader`` hands out each one
checked for its type (a whole number is not ``true``, ``"64"``, ``1.5``, NaN or a list), its range
(bounds below) and names the key and the fix when it refuses. spec.py reads every config value
through it; profiles.py and the profiler read every config file through ``loads``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import PlannerInputError

MAX_CONFIG_BYTES = 2_000_000  # a config.json is a few KB; anything this big is not one
MAX_JSON_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in ``text``, brackets inside strings left out."""
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if b in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _int_literal(digits: str) -> int | float:
    return int(digits) if len(digits) <= 18 else float(digits)  # float("9" * 5000) is inf: out of range later


def loads(data: str | bytes, what: str = "config.json", max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """The JSON value of ``data``, or a PlannerInputError naming ``what`` (size, encoding, depth, syntax)."""
    if len(data) > max_bytes:
        raise PlannerInputError(what, f"is {len(data):,} bytes, too large for a config (limit {max_bytes:,})",
                                "use the model's config.json, a few KB")
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise PlannerInputError(what, "is not UTF-8 text (a binary file?)", "use the model's config.json") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise PlannerInputError(what, f"is nested more than {MAX_JSON_DEPTH} levels deep", "use the model's config.json")
    try:
        return json.loads(data, parse_int=_int_literal)
    except (ValueError, RecursionError) as e:
        raise PlannerInputError(what, f"is not valid JSON ({_one_line(str(e))})", "fix or replace the file") from None


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value: Any) -> str:
    """A config value as an error message quotes it: one line, short, never a 5,000-digit number."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) < 10**30:
            return f"{value:,}"
        return f"{'-' if value < 0 else ''}about 10^{int(value.bit_length() * math.log10(2))}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:60] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    return type(value).__name__


def _kind(value: Any) -> str:
    """What a JSON value is, for 'must be ..., got ...'."""
    if isinstance(value, str):
        return f"the text {shown(value)}"
    return shown(value)


class ConfigReader:
    """Every value of one config object, checked. ``where`` prefixes the field in errors
    (``config.json:hidden_size``, ``config.json:quantization_config.bits``)."""

    def __init__(self, cfg: dict, where: str = "config.json"):
        self.cfg = cfg
        self.where = where

    def field(self, key: str) -> str:
        return f"{self.where}{'.' if ':' in self.where else ':'}{key}"

    def found(self, *keys: str) -> str | None:
        """The first of ``keys`` the config gives a non-null value for."""
        return next((k for k in keys if self.cfg.get(k) is not None), None)

    def has(self, *keys: str) -> bool:
        return self.found(*keys) is not None

    def int(self, what: str, *keys: str, default: Any = ..., low: int = 1, high: int) -> int:
        """A whole number from ``low`` to ``high``: the first key given, else ``default`` (``...``: required)."""
        key = self.found(*keys)
        if key is None:
            if default is ...:
                raise PlannerInputError(self.field(keys[0]), f"missing (looked for {', '.join(keys)})",
                                        f"add '{keys[0]}' to the config; it is needed for the {what}")
            return default
        return self.whole(key, self.cfg[key], what, low, high)

    def whole(self, key: str, value: Any, what: str, low: int, high: int) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            fix = "write the number without quotes" if isinstance(value, str) else f"give a whole number from {low:,} to {high:,}"
            raise PlannerInputError(self.field(key), f"must be a whole number, got {_kind(value)}", fix)
        if not low <= value <= high:
            raise PlannerInputError(self.field(key), f"{shown(value)} is not a possible {what}",
                                    f"give a value from {low:,} to {high:,}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """true or false (0 and 1 too, as some configs write them); null is the default."""
        value = self.cfg.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise PlannerInputError(self.field(key), f"must be true or false, got {_kind(value)}", "write true or false")

    def text(self, key: str, default: str = "") -> str:
        value = self.cfg.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise PlannerInputError(self.field(key), f"must be text, got {_kind(value)}", "write it in quotes")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings (null or absent: empty)."""
        value = self.cfg.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PlannerInputError(self.field(key), f"must be a list of names, got {_kind(value)}",
                                    'write e.g. ["full_attention", "sliding_attention"]')
        return tuple(value)

    def ints(self, key: str, what: str, low: int, high: int) -> tuple[int, ...]:
        """A list of whole numbers (null or absent: empty)."""
        value = self.cfg.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise PlannerInputError(self.field(key), f"must be a list of whole numbers, got {_kind(value)}",
                                    "write e.g. [0, 1]")
        return tuple(self.whole(key, v, what, low, high) for v in value)

    def section(self, key: str) -> ConfigReader | None:
        """A nested object (``quantization_config``) as its own reader; null, absent or {}: None."""
        value = self.cfg.get(key)
        if value is None or value == {}:
            return None
        if not isinstance(value, dict):
            raise PlannerInputError(self.field(key), f"must be an object, got {_kind(value)}",
                                    "write it as {...} or leave it out")
        return ConfigReader(value, self.field(key))
