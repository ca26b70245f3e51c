"""The chain's store time zone: one setting for every store until stores carry their own."""

import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STORE_TIMEZONE_VARIABLE = "STORE_TIMEZONE"
# The simulator's opening hours and traffic curve are UTC wall-clock hours.
DEFAULT_STORE_TIMEZONE = "UTC"


def store_timezone(environ: Mapping[str, str] | None = None) -> ZoneInfo:
    """$STORE_TIMEZONE (an IANA name such as Europe/Paris), else UTC."""
    environ = os.environ if environ is None else environ
    name = environ.get(STORE_TIMEZONE_VARIABLE) or DEFAULT_STORE_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{STORE_TIMEZONE_VARIABLE}={name!r} is not a time zone; use an IANA name such as "
            "Europe/Paris"
        ) from None
