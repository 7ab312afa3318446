"""The `filters` parameter: its conditions, and which stored rows answer them exactly.

One dimension's conditions (and a breakdown by that dimension) are answered by that
dimension's own rows. Conditions on several of footfall.metrics.COMBINABLE_DIMENSIONS, or a
breakdown by one of them filtered by others, are answered by the rows of the smallest of
footfall.metrics.COMBINATIONS holding all of them: a row counts when its members' values
meet every condition, and a breakdown adds it to its member value of the breakdown's
dimension. Anything else has no rows that tell it, and is refused (docs/reports.md,
"Filters").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal, cast

from footfall.metrics import (
    COMBINABLE_DIMENSIONS,
    COMBINATION_SEP,
    COMBINATION_SEP_STANDIN,
    COMBINATIONS,
    DIMENSIONS,
    EVENT_COMBINATIONS,
    EVENT_DIMENSIONS,
    combination_members,
)

Op = Literal["==", "!="]
Condition = tuple[str, Op, str]
MAX_FILTER_CONDITIONS: Final = 20


class FilterError(ValueError):
    """Conditions the stored rows cannot answer, or that are not conditions at all."""

    def __init__(
        self, message: str, allowed: str, *, code: str, limit: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = allowed
        self.code = code
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Filter:
    """Conditions `(dimension, op, value)`, all of which a row must meet."""

    conditions: tuple[Condition, ...]

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimensions the conditions name, in the order first named."""
        return tuple(dict.fromkeys(d for d, _, _ in self.conditions))

    @property
    def text(self) -> str:
        """The filter as the `filters` parameter would give it."""
        return ";".join(f"{d}{op}{value}" for d, op, value in self.conditions)

    def matcher(self, rows: str) -> Callable[[str], bool]:
        """Whether a row value of `rows` (a dimension, or a combination holding every
        dimension named here) meets every condition."""
        return _matcher(self, rows)

    def as_json(self) -> dict[str, Any]:
        return {"conditions": [list(c) for c in self.conditions]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Filter:
        if "dimension" in data:  # a worker of the one-dimension version asking
            data = {"conditions": [(data["dimension"], *c) for c in data["conditions"]]}
        conditions = tuple((str(d), cast(Op, op), str(v)) for d, op, v in data["conditions"])
        if not conditions or any(
            d not in DIMENSIONS or op not in ("==", "!=") for d, op, _ in conditions
        ):
            raise ValueError("not a filter")
        return cls(conditions)


def members_of(rows: str) -> tuple[str, ...]:
    """The dimensions a row value of `rows` holds: its members, or the dimension itself."""
    return COMBINATIONS.get(rows, (rows,))


def is_event_scoped(rows: str) -> bool:
    """Whether rows of this dimension or combination hold event-scoped counters."""
    return rows in EVENT_DIMENSIONS or rows in EVENT_COMBINATIONS


@lru_cache(maxsize=1024)
def _matcher(flt: Filter, rows: str) -> Callable[[str], bool]:
    members = members_of(rows)
    if len(members) == 1:
        checks = tuple((op == "==", value) for _, op, value in flt.conditions)
        return lambda value: all((value == wanted) == eq for eq, wanted in checks)
    # A member value's own separator is stored as its stand-in (combination_value).
    positions = tuple(
        (members.index(d), op == "==", value.replace(COMBINATION_SEP, COMBINATION_SEP_STANDIN))
        for d, op, value in flt.conditions
    )
    size = len(members)

    def matches(value: str) -> bool:
        parts = combination_members(value)
        return len(parts) == size and all((parts[i] == wanted) == eq for i, eq, wanted in positions)

    return matches


@lru_cache(maxsize=64)
def grouper(rows: str, dimension: str) -> Callable[[str], str]:
    """A breakdown by `dimension` over rows of `rows`: the value a row counts under."""
    if rows == dimension:
        return lambda value: value
    index = members_of(rows).index(dimension)
    return lambda value: combination_members(value)[index]


_COMBINE = (
    f"conditions on several of {', '.join(COMBINABLE_DIMENSIONS)} together (rows are kept per "
    "combination of their values), or on one other dimension"
)


def rows_for(dimensions: Iterable[str], breakdown: str | None = None) -> str:
    """The stored rows (a dimension or a combination) that answer conditions on
    `dimensions` (and a breakdown by `breakdown`) exactly; FilterError if none does."""
    named = set(dimensions) | ({breakdown} if breakdown is not None else set())
    if len(named) == 1:
        (only,) = named
        return only
    holding = [name for name, members in COMBINATIONS.items() if named <= set(members)]
    if holding:
        return min(holding, key=lambda name: len(COMBINATIONS[name]))
    alone = sorted(named - set(COMBINABLE_DIMENSIONS))
    listed = ", ".join(sorted(set(dimensions)))
    what = (
        f"conditions on {listed}"
        if breakdown is None
        else (f"a filter on {listed} in a breakdown by {breakdown}")
    )
    message = (
        f"{what}: only {', '.join(COMBINABLE_DIMENSIONS)} are kept in rows per combination of "
        f"their values; {', '.join(alone)} only in rows of its own, from which no sum or union "
        "tells a combination, so this cannot be answered exactly"
    )
    allowed = _COMBINE
    limit: dict[str, Any] = {"dimensions": 1, "combinable": list(COMBINABLE_DIMENSIONS)}
    if breakdown is not None:
        allowed += f"; a breakdown by {breakdown} takes conditions on {breakdown}" + (
            f" or on {', '.join(d for d in COMBINABLE_DIMENSIONS if d != breakdown)}"
            if breakdown in COMBINABLE_DIMENSIONS
            else " only"
        )
        limit["dimension"] = breakdown
    raise FilterError(message, allowed, code="filter_not_supported", limit=limit)


FILTER_ALLOWED: Final = (
    "conditions `dimension==value` or `dimension!=value` joined by `;`, on dimensions of: "
    f"{', '.join(DIMENSIONS)} (an absent value is the empty string); {_COMBINE}"
)


def parse_filters(text: str | None) -> Filter | None:
    """The conditions of a `filters` parameter (None: no filter); FilterError if malformed.

    Which rows answer them (and whether any do) is `rows_for`'s to say.
    """
    if text is None or not text.strip(";"):
        return None
    conditions: list[Condition] = []
    for part in text.split(";"):
        if not part:
            continue
        eq, ne = part.find("=="), part.find("!=")
        positions = [p for p in (eq, ne) if p >= 0]
        if not positions:
            raise FilterError(f"{part!r} is not a condition", FILTER_ALLOWED, code="bad_parameter")
        at = min(positions)
        dimension, op, value = part[:at].strip(), cast(Op, part[at : at + 2]), part[at + 2 :]
        if dimension not in DIMENSIONS:
            raise FilterError(
                f"unknown dimension {dimension!r}", FILTER_ALLOWED, code="bad_parameter"
            )
        conditions.append((dimension, op, value))
    if len(conditions) > MAX_FILTER_CONDITIONS:
        raise FilterError(
            f"{len(conditions)} conditions",
            f"at most {MAX_FILTER_CONDITIONS} conditions",
            code="bad_parameter",
            limit={"conditions": MAX_FILTER_CONDITIONS},
        )
    return Filter(tuple(conditions))
