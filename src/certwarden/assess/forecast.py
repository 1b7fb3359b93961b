"""The 47-day readiness view: per year, what the CA/B ceiling then in force means for us.

For each year we take the ceiling in force on 31 December (the strictest one reached that
year), count the leaf certificates whose validity exceeds it, and compare the renewals the
estate does now with the renewals it must do at that ceiling (one per ``ceiling`` days, i.e.
365 / ceiling a year per certificate). The estate is taken as it is: each leaf stands for a
service that keeps needing a certificate, renewed with the validity it has today.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from certwarden.assess import schedule
from certwarden.x509 import Certificate

DEFAULT_YEARS = range(2026, 2031)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastYear:
    year: int
    max_validity_days: int
    certificates: int  # leaf certificates (services) counted
    violating: int  # validity longer than the ceiling
    renewals_now: int  # renewals a year at each certificate's current validity
    renewals_needed: int  # renewals a year when every certificate lives at most the ceiling

    def as_dict(self) -> dict[str, int]:
        return {"year": self.year, "max_validity_days": self.max_validity_days,
                "certificates": self.certificates, "violating": self.violating,
                "renewals_now": self.renewals_now, "renewals_needed": self.renewals_needed}


def parse_years(text: str) -> range:
    """``2026..2030`` or ``2027``."""
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            first, last = int(a), int(b)
        else:
            first = last = int(text)
    except ValueError:
        raise ValueError(f"years must be YYYY or YYYY..YYYY, not {text!r}") from None
    if not 1990 <= first <= last <= 2100:
        raise ValueError(f"years {text!r}: need 1990 <= first <= last <= 2100")
    return range(first, last + 1)


def forecast(certificates: Iterable[Certificate], years: range = DEFAULT_YEARS,
             ) -> tuple[ForecastYear, ...]:
    # One pass over the certificates, accumulating every year at once.
    ceilings = [schedule.max_validity_days(dt.date(y, 12, 31)) for y in years]
    n = len(ceilings)
    counted, violating = [0] * n, [0] * n
    now_rate, need_rate = [0.0] * n, [0.0] * n
    for c in certificates:
        if c.is_ca:
            continue
        secs = schedule.validity_seconds(c.not_before, c.not_after)
        days = max(secs / 86400, 1.0)
        for i in range(n):
            counted[i] += 1
            now_rate[i] += 365 / days
            ceiling = ceilings[i]
            if secs > ceiling * 86400:
                violating[i] += 1
            need_rate[i] += 365 / min(days, ceiling)
    return tuple(
        ForecastYear(year=y, max_validity_days=ceilings[i], certificates=counted[i],
                     violating=violating[i], renewals_now=math.ceil(now_rate[i]),
                     renewals_needed=math.ceil(need_rate[i]))
        for i, y in enumerate(years))
