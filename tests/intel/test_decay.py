"""Decay: the polynomial at 0, at half-life, at the lifetime and beyond; false positives,
revocation and expiry; activity within the validity window; ``max_age_days`` against
``score``; policies with overridden rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.intel.decay import DEFAULT_RULES, DecayPolicy, DecayRule, family
from vigil.intel.types import IndicatorType

T = IndicatorType
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _half_life(rule: DecayRule) -> float:
    """The age at which ``1 - (t / L) ** (1 / (3 s))`` is one half."""
    return float(rule.lifetime_days * 0.5 ** (3 * rule.speed))


def test_families() -> None:
    assert {family(k) for k in (T.IPV4, T.IPV6, T.CIDR, T.URL)} == {"network"}
    assert {family(k) for k in (T.DOMAIN, T.EMAIL)} == {"domain"}
    assert {family(k) for k in (T.MD5, T.SHA1, T.SHA256, T.SHA512, T.FILENAME)} == {"file"}
    assert {family(k) for k in (T.JA3, T.USER_AGENT, T.STIX_PATTERN)} == {"default"}


def test_default_rules_are_opencti_s() -> None:
    assert DEFAULT_RULES["network"] == DecayRule(47, 0.55)
    assert DEFAULT_RULES["domain"] == DecayRule(300, 0.7)
    assert DEFAULT_RULES["file"] == DecayRule(460, 0.3)
    assert DEFAULT_RULES["default"] == DecayRule(470, 0.35)
    policy = DecayPolicy()
    assert (policy.threshold, policy.default_confidence) == (20.0, 50)


@pytest.mark.parametrize("kind", [T.IPV4, T.DOMAIN, T.SHA256, T.JA3])
def test_the_formula(kind: IndicatorType) -> None:
    policy = DecayPolicy()
    rule = policy.rule(kind)
    assert policy.score(kind, 80, NOW, NOW) == 80
    assert policy.score(kind, 80, _ago(_half_life(rule)), NOW) == pytest.approx(40, abs=0.01)
    ten = rule.lifetime_days / 10
    assert policy.score(kind, 80, _ago(ten), NOW) == pytest.approx(
        80 * (1 - 0.1 ** (1 / (3 * rule.speed))), abs=0.01)
    assert policy.score(kind, 80, _ago(rule.lifetime_days), NOW) == 0
    assert policy.score(kind, 80, _ago(rule.lifetime_days * 3), NOW) == 0
    assert 0 < policy.score(kind, 80, _ago(rule.lifetime_days * 0.999), NOW) < 80


def test_the_score_only_falls_with_age() -> None:
    policy = DecayPolicy()
    scores = [policy.score(T.IPV4, 90, _ago(day / 2), NOW) for day in range(0, 100)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 90 and scores[-1] == 0


def test_a_last_seen_in_the_future_is_no_bonus() -> None:
    assert DecayPolicy().score(T.IPV4, 80, NOW + timedelta(days=3), NOW) == 80


def test_rule_factor_bounds() -> None:
    rule = DecayRule(100, 1.0)
    assert rule.factor(-5) == 1.0
    assert rule.factor(0) == 1.0
    assert rule.factor(100) == 0.0
    assert rule.factor(1_000) == 0.0
    assert rule.factor(12.5) == pytest.approx(0.5)  # 1 - (1/8) ** (1/3)


def test_false_positive_sightings_halve_the_score() -> None:
    policy = DecayPolicy()
    fresh = policy.score(T.DOMAIN, 80, _ago(10), NOW)
    assert policy.score(T.DOMAIN, 80, _ago(10), NOW, false_positives=1) == pytest.approx(fresh / 2, abs=0.01)
    assert policy.score(T.DOMAIN, 80, _ago(10), NOW, false_positives=3) == pytest.approx(fresh / 8, abs=0.01)
    assert policy.score(T.DOMAIN, 80, _ago(10), NOW, false_positives=-2) == fresh


def test_revoked_or_expired_is_zero() -> None:
    policy = DecayPolicy()
    assert policy.score(T.IPV4, 100, NOW, NOW, revoked=True) == 0
    assert policy.score(T.IPV4, 100, NOW, NOW, expired=True) == 0
    assert not policy.active(0, NOW, None, None)


def test_threshold_and_validity() -> None:
    policy = DecayPolicy(threshold=30)
    assert policy.active(30, NOW, None, None)
    assert not policy.active(29.99, NOW, None, None)
    assert policy.active(80, NOW, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert policy.active(80, NOW, NOW, None)  # valid_from is inclusive
    assert not policy.active(80, NOW, NOW + timedelta(seconds=1), None)
    assert not policy.active(80, NOW, None, NOW)  # valid_until is exclusive
    assert policy.active(80, NOW, None, NOW + timedelta(seconds=1))
    assert not policy.active(80, NOW, NOW - timedelta(days=2), NOW - timedelta(days=1))
    # A threshold of 0 still leaves a fully decayed indicator inactive.
    assert not DecayPolicy(threshold=0).active(0, NOW, None, None)


@pytest.mark.parametrize("kind", [T.IPV4, T.URL, T.DOMAIN, T.EMAIL, T.MD5, T.FILENAME, T.JA3])
@pytest.mark.parametrize("base", [21, 50, 80, 100])
def test_max_age_is_where_the_score_meets_the_threshold(kind: IndicatorType, base: int) -> None:
    policy = DecayPolicy()
    days = policy.max_age_days(kind, base)
    assert 0 < days < policy.rule(kind).lifetime_days
    assert policy.score(kind, base, _ago(days), NOW) == pytest.approx(policy.threshold, abs=0.01)
    assert policy.active(policy.score(kind, base, _ago(days * 0.95), NOW), NOW, None, None)
    assert not policy.active(policy.score(kind, base, _ago(days * 1.05), NOW), NOW, None, None)


def test_max_age_edges() -> None:
    policy = DecayPolicy()
    assert policy.max_age_days(T.IPV4, 20) == 0  # active only at its last sighting
    assert policy.max_age_days(T.IPV4, 19) == 0
    assert policy.max_age_days(T.IPV4, 0) == 0
    assert policy.max_age_days(T.IPV4, -5) == 0
    assert DecayPolicy(threshold=0).max_age_days(T.IPV4, 80) == 47


def test_of_overrides_per_family() -> None:
    policy = DecayPolicy.of({"network": 10}, {"file": 1.0, "domain": 2.0}, 35, 60)
    assert policy.rule(T.IPV4) == DecayRule(10, 0.55)
    assert policy.rule(T.SHA256) == DecayRule(460, 1.0)
    assert policy.rule(T.DOMAIN) == DecayRule(300, 2.0)
    assert policy.rule(T.JA3) == DEFAULT_RULES["default"]
    assert (policy.threshold, policy.default_confidence) == (35, 60)
    assert policy.score(T.IPV4, 80, _ago(10), NOW) == 0
    assert DEFAULT_RULES["network"] == DecayRule(47, 0.55)  # the defaults are left alone
    # A changed policy applies at once to the same stored facts.
    assert DecayPolicy().score(T.IPV4, 80, _ago(9), NOW) > policy.score(T.IPV4, 80, _ago(9), NOW)


def test_of_without_overrides_is_the_default() -> None:
    assert DecayPolicy.of({}, {}, 20, 50) == DecayPolicy()


def test_a_policy_missing_a_family_falls_back_to_default() -> None:
    policy = DecayPolicy(rules={"default": DecayRule(10, 1.0)})
    assert policy.rule(T.IPV4) == DecayRule(10, 1.0)
    assert DecayPolicy(rules={}).rule(T.IPV4) == DEFAULT_RULES["default"]
