"""When a play is due: after every sync, every N seconds, on a 5-field cron, or only by hand.

The cron parser is small on purpose (no dependency): ``minute hour day-of-month month day-of-week``
with ``*``, numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` / ``a-b/n``; day-of-week 0–7
(0 and 7 are Sunday). Times are UTC. As in standard cron, when both day fields are restricted a
day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from closeflow.close import ConfigError

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; ``matches(t)`` says whether minute ``t`` (UTC) is one of its times."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, moment: datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def due_since(self, since: float, now: float) -> bool:
        """Whether a cron time falls in ``(since, now]`` (looking back at most 366 days)."""
        moment = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
        oldest = max(since, now - 366 * 86_400)
        while moment.timestamp() > oldest:
            if self.matches(moment):
                return True
            moment -= timedelta(minutes=1)
        return False


def parse_cron(text: str) -> Cron:
    """Parse a 5-field cron expression; a ``ConfigError`` says which field is wrong and why."""
    parts = text.split()
    if len(parts) != 5:
        raise ConfigError(
            f"cron {text!r} has {len(parts)} fields; expected 5: minute hour day-of-month month "
            "day-of-week, e.g. '*/10 * * * *'"
        )
    values = [
        _field(part, name, low, high, text) for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(0 if day == 7 else day for day in values[4])
    return Cron(text, values[0], values[1], values[2], values[3], weekdays, parts[2] != "*", parts[4] != "*")


def _field(part: str, name: str, low: int, high: int, text: str) -> frozenset[int]:
    found: set[int] = set()
    for item in part.split(","):
        base, _, step_text = item.partition("/")
        step = _number(step_text, name, text) if step_text else 1
        if step < 1:
            raise ConfigError(f"cron {text!r}: the step in {name} {item!r} must be at least 1")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = _number(first, name, text), _number(last, name, text)
        else:
            start = _number(base, name, text)
            stop = high if step_text else start
        if not low <= start <= stop <= high:
            raise ConfigError(
                f"cron {text!r}: {name} {item!r} is outside {low}-{high} (or the range is reversed)"
            )
        found.update(range(start, stop + 1, step))
    return frozenset(found)


def _number(value: str, name: str, text: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"cron {text!r}: {name} has {value!r} where a number is expected")
    return int(value)


def is_due(
    kind: str, *, now: float, last_run: float | None, every_seconds: float | None, cron: str | None
) -> bool:
    """Whether a play with this schedule runs in a cycle at ``now``, given when it last ran.

    ``after_sync`` plays run every cycle; ``manual`` ones never (only ``closeflow plays run``);
    ``every`` ones once ``every_seconds`` have passed; ``cron`` ones when a cron time has come
    since the last run. A play that never ran runs in the first cycle (then follows its schedule)."""
    if kind == "after_sync":
        return True
    if kind == "manual":
        return False
    if kind == "every":
        if every_seconds is None:
            raise ConfigError("an `every` schedule needs a duration, e.g. schedule: {every: 5m}")
        return last_run is None or now - last_run >= every_seconds
    if kind == "cron":
        if cron is None:
            raise ConfigError("a `cron` schedule needs an expression, e.g. schedule: {cron: '*/10 * * * *'}")
        return last_run is None or parse_cron(cron).due_since(last_run, now)
    raise ConfigError(f"unknown schedule kind {kind!r}; expected manual, after_sync, every or cron")


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``2h``, ``1d`` or a bare number of seconds → seconds."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:])
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise ConfigError(
            f"duration {text!r} is not a number with a unit; write e.g. 30s, 5m, 2h or 1d"
        ) from None
    if seconds <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return seconds
