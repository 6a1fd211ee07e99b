"""Upload times from video metadata: ISO-8601 strings or plain numbers, and windows such as `7d`.

Times are kept as floats: seconds since the Unix epoch for ISO-8601 values, the number itself otherwise, and are
given back in the unit the metadata used (an ISO string again, or the number).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from tubelet.errors import TubeletError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_time(value: Any, where: str) -> tuple[float, bool]:
    """(time, is_iso) of one metadata value; TubeletError naming `where` if it is neither a number nor ISO-8601."""
    if isinstance(value, bool):
        raise TubeletError(f"{where}: {value!r} is not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise TubeletError(f"{where}: {value!r} is not a finite time")
        return float(value), False
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            return parse_time(number, where)
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise TubeletError(f"{where}: {value!r} is neither a number nor an ISO-8601 time") from None
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp(), True
    raise TubeletError(f"{where}: {value!r} is not a time")


def format_time(t: float, iso: bool) -> str | float:
    """A time back in the metadata's own unit."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if iso else t


def parse_window(text: str) -> tuple[float, bool]:
    """(length, has_unit): `7d`, `12h`, `30m`, `2w`, `90s` → seconds; a bare number → itself, in the times' unit."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhdw]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise TubeletError(f"window {text!r}: expected a positive length such as 7d, 12h, 30m or a number")
    return float(m.group(1)) * UNITS.get(m.group(2), 1.0), bool(m.group(2))
