"""The cases settings in the shape the services use: SLA targets as durations per severity.

Built once from :class:`vigil.core.config.Settings` by the front doors and handed to the
services; a severity missing from the configured map falls back to the built-in target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from vigil.cases.enums import Severity
from vigil.core.config import CasesSettings, Settings
from vigil.core.timeutil import parse_duration

_DEFAULTS = CasesSettings()
_DUE_SOON = parse_duration(_DEFAULTS.due_soon)
_REGULATORY_DUE_SOON = parse_duration(_DEFAULTS.regulatory_due_soon)


def _targets(configured: dict[str, str], defaults: dict[str, str]) -> dict[Severity, timedelta]:
    merged = {**defaults, **configured}
    return {severity: parse_duration(merged[severity.value]) for severity in Severity}


@dataclass(frozen=True, slots=True)
class Policy:
    """SLA targets, reminder lead times and where custom case templates live."""

    ack_targets: dict[Severity, timedelta] = field(
        default_factory=lambda: _targets({}, _DEFAULTS.ack_targets))
    contain_targets: dict[Severity, timedelta] = field(
        default_factory=lambda: _targets({}, _DEFAULTS.contain_targets))
    due_soon: timedelta = _DUE_SOON
    regulatory_due_soon: timedelta = _REGULATORY_DUE_SOON
    templates_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy of one instance (custom templates default to ``case-templates`` in the
        data folder)."""
        cases = settings.cases
        return cls(ack_targets=_targets(cases.ack_targets, _DEFAULTS.ack_targets),
                   contain_targets=_targets(cases.contain_targets, _DEFAULTS.contain_targets),
                   due_soon=parse_duration(cases.due_soon),
                   regulatory_due_soon=parse_duration(cases.regulatory_due_soon),
                   templates_dir=cases.templates_dir or settings.data_dir / "case-templates")

    def lead(self, regulatory: bool) -> timedelta:
        """How long before its deadline a clock is announced as due."""
        return self.regulatory_due_soon if regulatory else self.due_soon


DEFAULT_POLICY = Policy()
