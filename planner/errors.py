"""The one input-error type of the planner.

Every bad input (a malformed config, zero heads, a negative batch, an unknown GPU) raises
``PlannerInputError`` naming the field and what to change. "Does not fit" is never an
exception: it is a result with a reason.
"""

from __future__ import annotations


class PlannerInputError(ValueError):
    """A user-supplied value is missing or impossible.

    ``field`` names the input (a config key, a CLI flag, a widget); ``fix`` says what to change.
    """

    def __init__(self, field: str, problem: str, fix: str = ""):
        self.field = field
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


def require_positive_int(field: str, value, *, maximum: int | None = None, allow_zero: bool = False) -> int:
    """Return ``value`` as an int, or raise a PlannerInputError that names ``field``."""
    if isinstance(value, bool) or value is None:
        raise PlannerInputError(field, f"must be a whole number, got {value!r}", "give a positive integer")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise PlannerInputError(field, f"must be a whole number, got {value!r}", "give a positive integer") from None
    if as_float != as_float or as_float != int(as_float):
        raise PlannerInputError(field, f"must be a whole number, got {value!r}", "give a positive integer")
    ivalue = int(as_float)
    lowest = 0 if allow_zero else 1
    if ivalue < lowest:
        raise PlannerInputError(field, f"must be at least {lowest}, got {ivalue}", f"set {field} to {lowest} or more")
    if maximum is not None and ivalue > maximum:
        raise PlannerInputError(field, f"{ivalue:,} is beyond the supported maximum {maximum:,}", f"use a value up to {maximum:,}")
    return ivalue


def require_fraction(field: str, value, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a float in (low, high], or raise."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise PlannerInputError(field, f"must be a number, got {value!r}") from None
    if not (low < f <= high):
        raise PlannerInputError(field, f"must be in ({low}, {high}], got {f}", f"choose a value above {low} and at most {high}")
    return f
