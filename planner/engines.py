"""Serving engines' start-up behaviour, version by version, as data.

``profiles/engines/<engine>.json`` (read by ``planner/profiles.py``) splits an engine's history into
*eras*: version ranges in which its start-up arithmetic did not change. Every rule of an era is a
``{"value", "source"}`` pair whose source names the engine's file and line in that version (see
docs/engine-memory.md and docs/research/). This module only interprets the rules; the arithmetic
that uses them is ``planner/startup.py``.

Versions compare on their release numbers: ``0.6.4.post1`` is 0.6.4, ``0.5.2rc2-cu126`` is 0.5.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import PlannerInputError

ENTRY_POINTS = ("serve", "LLM")


@dataclass(frozen=True, order=True)
class Version:
    """A release number; ``text`` keeps what was given (``0.6.4.post1``)."""

    parts: tuple[int, int, int]
    text: str = field(default="", compare=False)  # a release's rc / post builds order with it: 0.20 == 0.20.0

    @classmethod
    def parse(cls, text: str, field: str = "engine_version") -> Version:
        m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(text))
        if not m:
            raise PlannerInputError(field, f"{text!r} is not a version number", "write it as e.g. 0.10.2")
        return cls((int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)), str(text).strip())

    def __str__(self) -> str:
        return self.text or ".".join(map(str, self.parts))


@dataclass(frozen=True)
class Rule:
    value: Any
    source: str
    fitted_on: tuple[str, ...] = ()   # ids of the committed logs a figure was fitted on (in-sample)


@dataclass(frozen=True)
class Era:
    """One version range of one engine, with every rule it applies."""

    engine: str
    id: str
    since: Version
    until: Version | None   # exclusive; None = still current
    summary: str
    rules: tuple[tuple[str, Rule], ...]

    def contains(self, v: Version) -> bool:
        return self.since <= v and (self.until is None or v < self.until)

    def rule(self, name: str) -> Rule:
        for k, r in self.rules:
            if k == name:
                return r
        raise PlannerInputError(f"profiles/engines/{self.engine}.json:{self.id}.{name}", "missing",
                                "add the rule with its source")

    def __getitem__(self, name: str) -> Any:
        return self.rule(name).value

    def get(self, name: str, default: Any = None) -> Any:
        return next((r.value for k, r in self.rules if k == name), default)

    @property
    def label(self) -> str:
        end = f"< {self.until}" if self.until else "and later"
        return f"{self.engine} {self.since} {end} ({self.id})"


@dataclass(frozen=True)
class EngineTable:
    engine: str
    display_name: str
    newest: Version
    eras: tuple[Era, ...]
    constants: tuple[tuple[str, Rule], ...]  # figures shared by every era (sourced or fitted)

    @classmethod
    def from_dict(cls, d: dict) -> EngineTable:
        engine = str(d.get("engine", ""))
        where = f"profiles/engines/{engine or '?'}.json"
        eras = []
        inherited: dict[str, Rule] = {}
        for e in sorted(d.get("eras") or [], key=lambda e: Version.parse(e["since"])):
            rules = dict(inherited)  # an era inherits the rules of the one before and overrides some
            for k, r in (e.get("rules") or {}).items():
                if not isinstance(r, dict) or "value" not in r or not r.get("source"):
                    raise PlannerInputError(f"{where}:{e.get('id')}.{k}", "needs {value, source}")
                rules[k] = Rule(r["value"], r["source"], tuple(r.get("fitted_on") or ()))
            inherited = rules
            eras.append(Era(engine, str(e["id"]), Version.parse(e["since"]),
                            Version.parse(e["until"]) if e.get("until") else None, e.get("summary", ""),
                            tuple(rules.items())))
        if not eras:
            raise PlannerInputError(where, "has no eras", "add at least one version range")
        consts = []
        for k, r in (d.get("constants") or {}).items():
            if not isinstance(r, dict) or "value" not in r or not r.get("source"):
                raise PlannerInputError(f"{where}:constants.{k}", "needs {value, source}")
            consts.append((k, Rule(r["value"], r["source"], tuple(r.get("fitted_on") or ()))))
        return cls(engine, d.get("display_name", engine), Version.parse(d["newest"]),
                   tuple(eras), tuple(consts))

    def constant(self, name: str) -> Any:
        for k, r in self.constants:
            if k == name:
                return r.value
        raise PlannerInputError(f"profiles/engines/{self.engine}.json:constants.{name}", "missing")

    def fitted_on(self) -> set[str]:
        """Every committed log some figure of this table was fitted on (in-sample for the benchmark)."""
        out = {x for _, r in self.constants for x in r.fitted_on}
        return out | {x for e in self.eras for _, r in e.rules for x in r.fitted_on}

    def constant_source(self, name: str) -> str:
        return next((r.source for k, r in self.constants if k == name), "")

    def resolve(self, version: str | Version | None) -> tuple[Era, Version, str]:
        """The era of ``version`` (default: the newest release in the table) and a note when the
        version is newer than the table or older than its first era."""
        v = self.newest if version in (None, "", "newest", "latest") else (
            version if isinstance(version, Version) else Version.parse(version))
        note = ""
        if v.parts > self.newest.parts:  # a release candidate or post-release of the newest is not newer
            note = (f"{self.engine} {v} is newer than the newest release the table knows ({self.newest}); "
                    f"the rules of {self.newest} are applied")
        if v < self.eras[0].since and "dev" in v.text and v.parts[:2] == (0, 1):
            # a build from a source tree without tags reports 0.1.devN+g<commit>: its release is unknown
            note = f"{self.engine} {v} is a development build of unknown release: the newest rules are applied"
            v = self.newest
        era = next((e for e in self.eras if e.contains(v)), None)
        if era is None:
            if v < self.eras[0].since:
                raise PlannerInputError("engine_version", f"{self.engine} {v} is older than the table "
                                        f"(it starts at {self.eras[0].since})",
                                        f"give a version from {self.eras[0].since} on")
            era = self.eras[-1]
        return era, v, note


# ---- defaults that depend on the version, the entry point and the GPU -------------------------
@dataclass(frozen=True)
class SchedulerDefaults:
    max_num_seqs: int
    max_num_batched_tokens: int
    chunked_prefill: bool
    source: str


def scheduler_defaults(era: Era, entry_point: str, gpu_memory_bytes: float, gpu_name: str,
                       max_model_len: int, chunked_prefill: bool | None = None,
                       sliding_or_mla: bool = False) -> SchedulerDefaults:
    """vLLM's default max_num_seqs / max_num_batched_tokens for this era (rule ``scheduler``)."""
    if entry_point not in ENTRY_POINTS:
        raise PlannerInputError("entry_point", f"unknown entry point {entry_point!r}",
                                f"choose one of {', '.join(ENTRY_POINTS)}")
    r = era.rule("scheduler")
    s = r.value
    if s["kind"] == "fixed":
        return SchedulerDefaults(s["max_num_seqs"], s["max_num_batched_tokens"], True, r.source)
    if s["kind"] == "v0":
        auto = s.get("auto_chunked_above")
        chunked = chunked_prefill if chunked_prefill is not None else bool(
            auto and max_model_len > auto and not sliding_or_mla)
        mnbt = s["chunked_tokens"] if chunked else max(max_model_len, s["floor_tokens"])
        return SchedulerDefaults(s["max_num_seqs"], mnbt, chunked, r.source)
    gib = gpu_memory_bytes / 2**30
    name = gpu_name.lower()
    size = "small"
    for tier in s["tiers"]:  # first matching tier wins
        if gib >= tier.get("min_memory_gib", 0) and not any(x in name for x in tier.get("exclude_names", ())) and (
                not tier.get("require_names") or any(x in name for x in tier["require_names"])):
            size = tier["name"]
            break
    mnbt, seqs = s["values"][size][entry_point]
    chunked = True if chunked_prefill is None else chunked_prefill
    if not chunked:
        mnbt = max(max_model_len, mnbt)
    if s.get("clamp"):
        mnbt = min(seqs * max_model_len, mnbt)
        seqs = min(seqs, mnbt)
    return SchedulerDefaults(seqs, mnbt, chunked, r.source)
