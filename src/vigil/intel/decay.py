"""Indicator decay: a score computed when read, so a changed policy applies at once.

``score(t) = base_score * (1 - (t / lifetime) ** (1 / (3 * speed)))``, clamped at 0, where ``t``
is the time since the indicator was last seen by a feed or last sighted in the events (a new
sighting resets the clock). This is the polynomial of MISP's decaying models in the
parametrisation OpenCTI uses (``speed`` is OpenCTI's "pound"; the defaults are OpenCTI's
built-in decay rules: addresses and URLs 47 days, domains 300, files 460, anything else 470).
Each false-positive sighting halves the score; an ``expired`` sighting or ``revoked`` makes it
0. An indicator is *active* while its score is at or above the threshold (default 20) and it
is within ``valid_from``/``valid_until``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vigil.intel.types import HASH_TYPES, IndicatorType

_FAMILIES: dict[str, frozenset[IndicatorType]] = {
    "network": frozenset({IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR,
                          IndicatorType.URL}),
    "domain": frozenset({IndicatorType.DOMAIN, IndicatorType.EMAIL}),
    "file": HASH_TYPES | {IndicatorType.FILENAME},
}


@dataclass(frozen=True, slots=True)
class DecayRule:
    """How fast one family of indicators loses its score."""

    lifetime_days: float
    speed: float

    def factor(self, age_days: float) -> float:
        """The share of the base score left after ``age_days`` (1 at 0, 0 at the lifetime)."""
        if age_days <= 0:
            return 1.0
        if age_days >= self.lifetime_days:
            return 0.0
        return max(0.0, 1.0 - float((age_days / self.lifetime_days) ** (1.0 / (3.0 * self.speed))))


DEFAULT_RULES: dict[str, DecayRule] = {
    "network": DecayRule(47, 0.55),
    "domain": DecayRule(300, 0.7),
    "file": DecayRule(460, 0.3),
    "default": DecayRule(470, 0.35),
}


def family(kind: IndicatorType) -> str:
    """The decay family of a type: ``network``, ``domain``, ``file`` or ``default``."""
    return next((name for name, kinds in _FAMILIES.items() if kind in kinds), "default")


@dataclass(frozen=True, slots=True)
class DecayPolicy:
    """The decay rules per family, the activity threshold and the score of an indicator whose
    source gave no confidence."""

    rules: dict[str, DecayRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    threshold: float = 20.0
    default_confidence: int = 50

    def rule(self, kind: IndicatorType) -> DecayRule:
        return self.rules.get(family(kind)) or self.rules.get("default") or DEFAULT_RULES["default"]

    def score(self, kind: IndicatorType, base_score: float, last_seen: datetime, now: datetime, *,
              revoked: bool = False, false_positives: int = 0, expired: bool = False) -> float:
        """The score now: 0 when revoked or expired, halved per false-positive sighting."""
        if revoked or expired:
            return 0.0
        age_days = (now - last_seen).total_seconds() / 86_400
        value = base_score * self.rule(kind).factor(age_days) * (0.5 ** max(0, false_positives))
        return round(value, 2)

    def active(self, score: float, now: datetime, valid_from: datetime | None,
               valid_until: datetime | None) -> bool:
        """Whether an indicator of this score is to be matched and exported now."""
        if valid_from is not None and now < valid_from:
            return False
        if valid_until is not None and now >= valid_until:
            return False
        return score >= self.threshold and score > 0

    def max_age_days(self, kind: IndicatorType, base_score: float) -> float:
        """How long after its last sighting an indicator of ``base_score`` stays active (no
        false positives): the age at which the score reaches the threshold."""
        if base_score <= 0 or base_score < self.threshold:
            return 0.0
        rule = self.rule(kind)
        remaining = 1.0 - self.threshold / base_score
        return float(rule.lifetime_days * remaining ** (3.0 * rule.speed))

    @classmethod
    def of(cls, lifetimes: dict[str, float], speeds: dict[str, float], threshold: float,
           default_confidence: int) -> DecayPolicy:
        """The default rules with lifetimes and speeds overridden per family."""
        rules = dict(DEFAULT_RULES)
        for name in set(lifetimes) | set(speeds):
            base = rules.get(name, DEFAULT_RULES["default"])
            rules[name] = DecayRule(lifetimes.get(name, base.lifetime_days), speeds.get(name, base.speed))
        return cls(rules, threshold, default_confidence)
