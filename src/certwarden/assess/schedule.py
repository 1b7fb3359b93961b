"""The CA/Browser Forum maximum validity of a TLS subscriber certificate, by issue date.

Ballot SC-081v3 (TLS Baseline Requirements §6.3.2): 398 days for certificates issued before
2026-03-15, 200 days from then, 100 days from 2027-03-15, 47 days from 2029-03-15.
"""

from __future__ import annotations

import datetime as dt
import functools

CITATION = "CA/B Forum TLS Baseline Requirements §6.3.2 (ballot SC-081v3)"
BEFORE_SCHEDULE_DAYS = 398
# (first issue date in force, maximum validity in days), oldest first.
SCHEDULE: tuple[tuple[dt.date, int], ...] = (
    (dt.date(2026, 3, 15), 200),
    (dt.date(2027, 3, 15), 100),
    (dt.date(2029, 3, 15), 47),
)
_DAY = 86400
_SCHEDULE_UTC = tuple((dt.datetime.combine(start, dt.time(), dt.UTC), days)
                      for start, days in SCHEDULE)


def max_validity_days(issued: dt.datetime | dt.date) -> int:
    """The ceiling in force for a certificate issued (notBefore) at ``issued``."""
    if isinstance(issued, dt.datetime) and issued.tzinfo is dt.UTC:
        # In UTC (as parsed): compare the instant with each start (midnight UTC) instead of building
        # the UTC date; the same answer, without a conversion and a cache lookup per leaf.
        ceiling = BEFORE_SCHEDULE_DAYS
        for start, days in _SCHEDULE_UTC:
            if issued >= start:
                ceiling = days
        return ceiling
    day = issued.astimezone(dt.UTC).date() if isinstance(issued, dt.datetime) else issued
    return _ceiling_on(day)


@functools.lru_cache(maxsize=4096)  # a million certificates share a few thousand issue days
def _ceiling_on(day: dt.date) -> int:
    ceiling = BEFORE_SCHEDULE_DAYS
    for start, days in SCHEDULE:
        if day >= start:
            ceiling = days
    return ceiling


def validity_seconds(not_before: dt.datetime, not_after: dt.datetime) -> int:
    """BR §1.6.1: the validity period runs from notBefore THROUGH notAfter, inclusive."""
    return int((not_after - not_before).total_seconds()) + 1


def exceeds(not_before: dt.datetime, not_after: dt.datetime, days: int) -> bool:
    """BR §6.3.2: any time beyond a whole day counts as another day."""
    return validity_seconds(not_before, not_after) > days * _DAY


def validity_days_rounded_up(not_before: dt.datetime, not_after: dt.datetime) -> int:
    secs = validity_seconds(not_before, not_after)
    return -(-secs // _DAY)
