"""Values as Elasticsearch parses them for a field type, and the engine's parameter formats.

Each ``*_problem`` function returns why Elasticsearch refuses a value (the reason its reference
gives), or None when it accepts it. They follow the server's parsers for the default formats:

* ``boolean`` fields take ``true``/``false`` (or the strings ``"true"``/``"false"``, and ``""`` as false);
* numeric fields take numbers or strings that parse as numbers (``"12"``, ``"1.5e3"``);
* ``date`` fields (default format ``strict_date_optional_time||epoch_millis``) take ISO-8601 dates with
  optional time and zone, epoch milliseconds, and date math (``now-7d/d``, ``2024-01-01||+1M/M``);
* ``ip`` fields take IPv4/IPv6 addresses (``term`` also a CIDR block);
* date_histogram ``calendar_interval`` takes a unit or ``1`` of it (``1d``, ``month``); ``fixed_interval``
  an amount of ms, s, m, h or d.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import date
from typing import Any

_ISO = re.compile(
    r"^(?P<y>[+-]?\d{4,9})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d{1,9})?)?)?)?"
    r"(?P<z>Z|[+-]\d{2}(?::?\d{2})?)?)?)?$"
)
_MATH = re.compile(r"^(?:[+-]\d*[yMwdhHms]|/[yMwdhHms])*$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def is_number(value: Any) -> bool:
    """A JSON number (not a boolean) or a string the server parses as one."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return not (isinstance(value, float) and not math.isfinite(value))
    return isinstance(value, str) and bool(_NUMBER.match(value.strip()))


def boolean_problem(value: Any) -> str | None:
    if isinstance(value, bool) or value in ("true", "false", ""):
        return None
    return f"Can't parse boolean value [{_text(value)}], expected [true] or [false]"


def number_problem(value: Any, ftype: str) -> str | None:
    if is_number(value):
        return None
    return f"failed to parse [{_text(value)}] as a number for the {ftype} field"


def iso_date_problem(text: str) -> str | None:
    """None when ``text`` is a ``strict_date_optional_time`` date."""
    m = _ISO.match(text)
    if not m:
        return "not an ISO-8601 date"
    try:
        year = int(m["y"])
        month = int(m["m"] or 1)
        day = int(m["d"] or 1)
        if 1 <= year <= 9999:
            date(year, month, day)
        elif not (1 <= month <= 12 and 1 <= day <= 31):
            return "month or day out of range"
    except ValueError as exc:
        return str(exc)
    if (m["H"] is not None and int(m["H"]) > 23) or (m["M"] is not None and int(m["M"]) > 59):
        return "time out of range"
    if m["S"] is not None and int(m["S"]) > 59:
        return "time out of range"
    return None


def _epoch(text: str, *, seconds: bool = False) -> bool:
    return bool(re.match(r"^[+-]?\d+(?:\.\d+)?$", text))


#: date formats whose values this module can check; any other named format or pattern is trusted
_FORMATS = {
    "strict_date_optional_time": lambda t: iso_date_problem(t) is None,
    "date_optional_time": lambda t: iso_date_problem(t) is None,
    "strict_date_optional_time_nanos": lambda t: iso_date_problem(t) is None,
    "epoch_millis": _epoch,
    "epoch_second": _epoch,
    "strict_date": lambda t: bool(re.match(r"^\d{4}-\d{2}-\d{2}$", t)) and iso_date_problem(t) is None,
    "date": lambda t: bool(re.match(r"^\d{4}-\d{2}-\d{2}$", t)) and iso_date_problem(t) is None,
    "yyyy-MM-dd": lambda t: bool(re.match(r"^\d{4}-\d{2}-\d{2}$", t)) and iso_date_problem(t) is None,
    "strict_year": lambda t: bool(re.match(r"^\d{4}$", t)),
    "year": lambda t: bool(re.match(r"^\d{1,9}$", t)),
    "strict_year_month": lambda t: bool(re.match(r"^\d{4}-\d{2}$", t)) and iso_date_problem(t) is None,
    "year_month": lambda t: bool(re.match(r"^\d{4}-\d{2}$", t)) and iso_date_problem(t) is None,
}
DEFAULT_DATE_FORMAT = "strict_date_optional_time||epoch_millis"


def date_problem(value: Any, fmt: str | None = None) -> str | None:
    """Why a date field refuses ``value`` under format ``fmt`` (``a||b`` alternatives; None: the default)."""
    if isinstance(value, bool) or value is None:
        return f"failed to parse date field [{_text(value)}]"
    if isinstance(value, int | float):
        return None  # epoch millis
    if not isinstance(value, str):
        return f"failed to parse date field [{_text(value)}]"
    text = value.strip()
    anchor, sep, math_part = text.partition("||")
    if text.startswith("now"):
        anchor, math_part, sep = "now", text[3:], "||"
    if sep and not _MATH.match(math_part):
        return f"failed to parse date field [{value}]: bad date math [{math_part}]"
    if anchor == "now":
        return None
    formats = [f.strip() for f in (fmt or DEFAULT_DATE_FORMAT).split("||") if f.strip()]
    checkers = [_FORMATS.get(f) for f in formats]
    if any(c is None for c in checkers):
        return None  # a pattern this module does not evaluate: trust it
    if any(c(anchor) for c in checkers if c is not None):
        return None
    return f"failed to parse date field [{value}] with format [{'||'.join(formats)}]"


def ip_problem(value: Any, *, cidr: bool = False) -> str | None:
    text = value if isinstance(value, str) else None
    if text is not None:
        try:
            if cidr and "/" in text:
                ipaddress.ip_network(text, strict=False)
            else:
                ipaddress.ip_address(text)
            return None
        except ValueError:
            pass
    return f"'{_text(value)}' is not an IP string literal"


def value_problem(value: Any, ftype: str, *, fmt: str | None = None, cidr: bool = False) -> str | None:
    """Why a field of type ``ftype`` refuses ``value`` as a query term, or None."""
    from expertkit.kinds.elastic.body import DATES, NUMERIC

    if value is None:
        return None
    if ftype == "boolean":
        return boolean_problem(value)
    if ftype in NUMERIC:
        return number_problem(value, ftype)
    if ftype in DATES:
        return date_problem(value, fmt)
    if ftype == "ip":
        return ip_problem(value, cidr=cidr)
    return None


CALENDAR_UNITS = {"second": "1s", "minute": "1m", "hour": "1h", "day": "1d", "week": "1w", "month": "1M",
                  "quarter": "1q", "year": "1y"}
_FIXED = re.compile(r"^\d+(?:ms|s|m|h|d|nanos|micros)$")
_TIME_VALUE = re.compile(r"^-?\d+(?:\.\d+)?(?:nanos|micros|ms|s|m|h|d)$")
_DISTANCE = re.compile(r"^\d+(?:\.\d+)?(?:mi|miles|yd|yards|ft|feet|in|inch|km|kilometers|m|meters|cm|"
                       r"centimeters|mm|millimeters|NM|nmi|nauticalmiles)?$")


def calendar_interval_problem(value: Any) -> str | None:
    if isinstance(value, str) and (value in CALENDAR_UNITS or value in CALENDAR_UNITS.values()):
        return None
    return (f"The supplied interval [{_text(value)}] could not be parsed as a calendar interval "
            f"(one of {', '.join(CALENDAR_UNITS)} or 1s, 1m, 1h, 1d, 1w, 1M, 1q, 1y)")


def fixed_interval_problem(value: Any) -> str | None:
    if isinstance(value, str) and _FIXED.match(value) and not value.startswith("0"):
        return None
    if isinstance(value, str) and (value in CALENDAR_UNITS or value[-1:] in "wMqy"):
        return (f"failed to parse setting [date_histogram.fixedInterval] with value [{value}] as a time value:"
                f" fixed intervals are ms, s, m, h or d (use calendar_interval for {value})")
    return f"failed to parse [{_text(value)}] as a fixed interval (an amount of ms, s, m, h or d)"


def time_value_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    if isinstance(value, str) and _TIME_VALUE.match(value):
        return None
    return f"failed to parse [{_text(value)}] as a time value (e.g. 30s, 5m, 1h)"


def distance_problem(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None
    if isinstance(value, str) and _DISTANCE.match(value.strip()):
        return None
    return f"failed to parse distance [{_text(value)}] (a number with a unit: km, m, mi, ...)"


def geo_point_problem(value: Any) -> str | None:
    """Why a geo_point value (object, ``"lat,lon"``, ``[lon, lat]``, geohash, WKT POINT) is refused."""
    lat: Any = None
    lon: Any = None
    if isinstance(value, dict):
        if "lat" in value or "lon" in value:
            lat, lon = value.get("lat"), value.get("lon")
            if lat is None or lon is None:
                return "field [lat] and [lon] must be set"
        elif isinstance(value.get("geohash"), str):
            return None
        elif value.get("type") == "Point" and isinstance(value.get("coordinates"), list):
            coords = value["coordinates"]
            lon, lat = [*coords, None, None][:2]
        else:
            return "a geo point is {lat, lon}, \"lat,lon\", [lon, lat], a geohash or POINT(lon lat)"
    elif isinstance(value, list):
        if len(value) not in (2, 3):
            return "a geo point array is [lon, lat]"
        lon, lat = value[0], value[1]
    elif isinstance(value, str):
        text = value.strip()
        if "," in text:
            parts = text.split(",")
            if len(parts) not in (2, 3):
                return f"failed to parse geo point [{text}]"
            lat, lon = parts[0].strip(), parts[1].strip()
        elif text.upper().startswith("POINT"):
            m = re.match(r"^POINT\s*\(\s*(\S+)\s+(\S+)\s*\)$", text, re.IGNORECASE)
            if not m:
                return f"failed to parse geo point [{text}]"
            lon, lat = m[1], m[2]
        elif re.match(r"^[0-9b-hjkmnp-z]{1,12}$", text):
            return None
        else:
            return f"failed to parse geo point [{text}]"
    else:
        return f"a geo point cannot be {_text(value)}"
    if not is_number(lat) or not is_number(lon):
        return f"latitude and longitude must be numbers, got [{_text(lat)}, {_text(lon)}]"
    if not -90 <= float(lat) <= 90:
        return f"illegal latitude value [{lat}]"
    if not -180 <= float(lon) <= 180:
        return f"illegal longitude value [{lon}]"
    return None


def time_zone_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"time_zone must be a string, not {_text(value)}"
    if re.match(r"^(?:Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?|(?:UTC|GMT)[+-]\d{1,2}(?::?\d{2})?)$", value):
        return None
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones
    except ImportError:  # pragma: no cover
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None if not available_timezones() else f"unknown time zone id [{value}]"
    return None


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)
