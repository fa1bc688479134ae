"""Regulatory notification deadlines as data: which regime, which trigger, how long.

Only deadlines confirmed against the primary texts are built in:

- GDPR Art. 33(1): notify the supervisory authority "without undue delay and, where
  feasible, not later than 72 hours after having become aware" of a personal data breach.
- HIPAA, 45 CFR 164.404 (individuals), 164.406 (media, > 500 residents of a State) and
  164.410 (business associate to covered entity): without unreasonable delay and in no case
  later than 60 calendar days after discovery.

Anything else (NIS2, DORA, SEC 8-K, sector or contract obligations) is a ``custom`` regime
with an explicit deadline, so that no unverified figure is presented as law.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class RegimeCode(StrEnum):
    GDPR_33 = "GDPR-33"
    HIPAA_INDIVIDUAL = "HIPAA-individual"
    HIPAA_MEDIA = "HIPAA-media"
    HIPAA_BUSINESS_ASSOCIATE = "HIPAA-business-associate"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Regime:
    """One notification obligation: its clock runs ``period`` from the ``trigger``."""

    code: RegimeCode
    title: str
    trigger: str
    period: timedelta | None
    citation: str

    def due(self, trigger_at: datetime) -> datetime:
        """The deadline for a trigger time (calendar time: weekends and holidays count)."""
        if self.period is None:
            raise ValueError(f"{self.code.value} has no fixed period; give the deadline")
        return trigger_at + self.period


REGIMES: dict[RegimeCode, Regime] = {r.code: r for r in (
    Regime(RegimeCode.GDPR_33, "GDPR Art. 33 notification to the supervisory authority",
           "awareness", timedelta(hours=72), "Regulation (EU) 2016/679, Art. 33(1)"),
    Regime(RegimeCode.HIPAA_INDIVIDUAL, "HIPAA breach notice to individuals", "discovery",
           timedelta(days=60), "45 CFR 164.404(b)"),
    Regime(RegimeCode.HIPAA_MEDIA, "HIPAA breach notice to the media (> 500 residents)",
           "discovery", timedelta(days=60), "45 CFR 164.406(b)"),
    Regime(RegimeCode.HIPAA_BUSINESS_ASSOCIATE, "HIPAA business associate notice to the "
           "covered entity", "discovery", timedelta(days=60), "45 CFR 164.410(b)"),
    Regime(RegimeCode.CUSTOM, "Custom obligation", "trigger", None, "as configured"),
)}
"""The regimes Vigil knows, by code."""
