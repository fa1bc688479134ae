"""Live matching and retro-hunts: hits become alerts, and sightings go back on the indicators.

:class:`IntelMatcher` is the hook the ingest paths call with each committed batch (the Arrow
tables just written, one per log source): the batch is registered in DuckDB and matched in
one query per log source. :meth:`IntelMatcher.retro` matches indicators against the stored
events of the last ``intel.retro_days`` days (by default the indicators added or changed
since the last retro-hunt).

Hits of one indicator on one host within ``detect.suppress_seconds`` share one alert (source
``intel``, rule id ``intel:<indicator id>``). The alert carries the indicator's context: its
value and name in the title, its sources as the author, and tags for the TLP, confidence,
score, ATT&CK techniques, malware and ``intel.retro`` for retro-hunt hits. The values are
checked against the allowlists once more (a list added since the import applies at once).
Every alert's hits are recorded as a ``seen`` sighting of the indicator, which resets its
decay.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.alerts import AlertInput, GroupingPolicy, Severity, Source, service
from vigil.core import logging as vlog
from vigil.core.config import IntelSettings
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc, utcnow
from vigil.events.models import LogSource
from vigil.intel import lists, reading
from vigil.intel.allowlist import AllowlistSet
from vigil.intel.decay import DecayPolicy
from vigil.intel.fields import MatchKind, field_map
from vigil.intel.index import MatchIndex
from vigil.intel.matching import Hit, Relation, match_relations
from vigil.intel.models import Indicator, Meta, Sighting
from vigil.intel.types import IndicatorType, IndicatorView
from vigil.intel.writing import chunks
from vigil.store.duck import EventStore
from vigil.store.schema import TS, quote

log = vlog.get("vigil.intel")
FULL_RELOAD_SECONDS = 3600.0
_names = itertools.count()


def policy_of(settings: IntelSettings) -> DecayPolicy:
    """The decay policy the settings describe."""
    return DecayPolicy.of(settings.lifetime_days, settings.decay_speed, settings.decay_threshold,
                          settings.default_confidence)


@dataclass(slots=True)
class MatchResult:
    """What one matching run found and recorded."""

    events: int = 0
    hits: int = 0
    allowlisted: int = 0
    alerts_created: int = 0
    alerts_updated: int = 0
    indicators: set[str] = field(default_factory=set)
    seconds: float = 0.0


class IntelMatcher:
    """Live matching for one instance (thread-safe: one match runs at a time)."""

    def __init__(self, db: StateDB, store: EventStore, settings: IntelSettings, *,
                 suppress_seconds: int = 3600, grouping: GroupingPolicy | None = None,
                 reload_seconds: float = 5.0) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.policy = policy_of(settings)
        self.fields = field_map(settings.fields)
        self.suppress_seconds = suppress_seconds
        self.grouping = grouping or service.DEFAULT_POLICY
        self.reload_seconds = reload_seconds
        self._conn = store.cursor()
        self.index = MatchIndex(db, self._conn, self.policy)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._full = time.monotonic()
        self._allowlists: AllowlistSet | None = None
        self.totals = MatchResult()

    def close(self) -> None:
        self._conn.close()

    def warm(self) -> threading.Thread:
        """Load the index on a thread of its own (a million indicators take seconds), so that
        the first batch after a start does not wait for it."""
        def load() -> None:
            with self._lock:
                self.refresh(force=True)

        thread = threading.Thread(target=load, name="intel-index", daemon=True)
        thread.start()
        return thread

    def refresh(self, *, force: bool = False) -> None:
        """Reload the index if the indicators changed (checked every ``reload_seconds``), and
        entirely every ``FULL_RELOAD_SECONDS`` (sightings extend an indicator's life without
        changing the revision: a sighting is no reason to reload)."""
        now = time.monotonic()
        if not force and now - self._checked < self.reload_seconds and self.index.revision is not None:
            return
        self._checked = now
        if now - self._full >= FULL_RELOAD_SECONDS:
            force, self._full = True, now
        if self.index.refresh(force=force) or self._allowlists is None:
            with self.db.session() as session:
                self._allowlists = lists.active_lists(session, self.settings)

    def __call__(self, tables: Mapping[LogSource, pa.Table]) -> MatchResult:
        """Match a committed batch (the ingest hook)."""
        with self._lock:
            started = time.perf_counter()
            self.refresh()
            result = MatchResult()
            if self.index.empty:
                return result
            result.events = sum(t.num_rows for t in tables.values())
            hits = self._match_tables(tables)
            self._record(hits, result, retro=False)
            result.seconds = time.perf_counter() - started
            self._total(result)
            return result

    def _match_tables(self, tables: Mapping[LogSource, pa.Table]) -> list[Hit]:
        """Every table of the batch registered, then matched in one go."""
        relations: list[Relation] = []
        try:
            for source, table in tables.items():
                name = f"_intel_batch_{next(_names)}"
                self._conn.register(name, table)
                relations.append(Relation(quote(name), {c.lower(): c for c in table.column_names},
                                          source.partition))
            return match_relations(self._conn, self.index.view(), relations, self.fields)
        finally:
            for relation in relations:
                self._conn.unregister(relation.name.strip('"'))

    def retro(self, *, days: int | None = None, indicator_ids: Sequence[str] | None = None,
              since_last: bool = True) -> MatchResult:
        """Match indicators against the stored events of the last ``days`` (``intel.retro_days``):
        ``indicator_ids``, or those added or changed since the last retro-hunt, or all."""
        with self._lock:
            started = time.perf_counter()
            self.refresh(force=True)
            moment = utcnow()
            scope = self._retro_scope(indicator_ids, since_last)
            result = MatchResult()
            window = days if days is not None else self.settings.retro_days
            if (scope is not None and not scope) or window <= 0 or self.index.empty:
                self._mark(moment)
                return result
            view = self.index.view() if scope is None else self.index.scoped(scope)
            since = moment - timedelta(days=window)
            relations = [Relation(quote(info.table), self.store.columns(info.partition), info.partition)
                         for info in self.store.partitions()]
            hits = match_relations(self._conn, view, relations, self.fields, where=f"{quote(TS)} >= ?",
                                   params=[since])
            self._record(hits, result, retro=True)
            self._mark(moment)
            result.seconds = time.perf_counter() - started
            return result

    def _retro_scope(self, ids: Sequence[str] | None, since_last: bool) -> list[str] | None:
        if ids is not None:
            return list(ids)
        if not since_last:
            return None
        with self.db.session() as session:
            last = session.execute(select(Meta.matched_at).where(Meta.id == 1)).scalar()
            if last is None:
                return None
            return list(session.execute(select(Indicator.id).where(
                Indicator.updated_at >= to_utc(last) - timedelta(seconds=2))).scalars())

    def _mark(self, moment: datetime) -> None:
        with self.db.session() as session:
            session.execute(update(Meta).where(Meta.id == 1).values(matched_at=moment))

    def _total(self, result: MatchResult) -> None:
        for name in ("events", "hits", "allowlisted", "alerts_created", "alerts_updated", "seconds"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(result, name))

    def _record(self, hits: list[Hit], result: MatchResult, *, retro: bool) -> None:
        if not hits:
            return
        with self.db.session() as session:
            found = {v.id: v for v in reading.views(session, list(session.execute(select(Indicator).where(
                Indicator.id.in_({h.indicator for h in hits}))).scalars()), self.policy)}
            kept = [h for h in hits if h.indicator in found and not self._allowlisted(found[h.indicator], h)]
            result.hits += len(kept)
            result.allowlisted += len(hits) - len(kept)
            groups: dict[str, list[Hit]] = defaultdict(list)
            for hit in kept:
                groups[self._key(hit)].append(hit)
            inputs = [alert_input(key, group, found[group[0].indicator], self.settings, retro)
                      for key, group in groups.items()]
            recorded = service.record(session, inputs, self.grouping)
            result.alerts_created += len(recorded.created)
            result.alerts_updated += len(recorded.updated)
            result.indicators.update(h.indicator for h in kept)
            changed = service.dedup_keys(session, [*recorded.created, *recorded.updated])
            _sightings(session, [h for h in kept if self._key(h) in changed])
        if result.hits:
            log.info("intel: %d hits of %d indicators, %d new alerts%s", result.hits,
                     len(result.indicators), result.alerts_created, " (retro-hunt)" if retro else "")

    def _allowlisted(self, view: IndicatorView, hit: Hit) -> bool:
        if self._allowlists is None:
            return False
        kind = IndicatorType.DOMAIN if "." in hit.value and view.type is IndicatorType.DOMAIN else view.type
        if view.type is IndicatorType.CIDR:
            kind = IndicatorType.IPV6 if ":" in hit.value else IndicatorType.IPV4
        return self._allowlists.match(kind, hit.value) is not None or view.allowlisted is not None

    def _key(self, hit: Hit) -> str:
        window = self.suppress_seconds
        bucket = int(hit.ts.timestamp()) // window if window else hit.event_id
        return f"intel|{hit.indicator}|{hit.host or '-'}|{bucket}"


def alert_input(key: str, group: Sequence[Hit], view: IndicatorView, settings: IntelSettings,
                retro: bool) -> AlertInput:
    """The alert of the hits that share ``key`` (one indicator, host and window)."""
    times = [h.ts for h in group]
    ids = tuple(dict.fromkeys(h.event_id for h in group))
    label = view.name or view.value
    title = f"Threat intel match: {view.type.value} {view.value}"
    if view.name and view.name != view.value:
        title += f" ({label})"
    tags = ["intel", f"intel.type.{view.type.value}", f"intel.confidence.{view.confidence}",
            f"intel.score.{round(view.score)}",
            *(f"intel.field.{name}" for name in sorted({h.field for h in group}))]
    if view.tlp is not None:
        tags.append(f"tlp:{view.tlp.value}")
    if retro:
        tags.append("intel.retro")
    tags += [f"attack.{t.lower()}" for t in view.attack] + [f"malware.{m}" for m in view.malware]
    src_ip = next((h.value for h in group if h.field.lower() in _SOURCE_FIELDS), None)
    severity = Severity.parse(settings.alert_severity)
    if view.confidence < 40 and severity > Severity.LOW:
        severity = Severity(severity - 1)
    return AlertInput(
        source=Source.INTEL, rule_id=f"intel:{view.id}", rule_title=title[:500], dedup_key=key,
        first_seen=min(times), last_seen=max(times), level=severity.label, severity=severity,
        rule_author=", ".join(s.name for s in view.sources)[:255] or None,
        rule_references=tuple(r for r in (view.stix_id, *(s.reference for s in view.sources)) if r)[:20],
        tags=tuple(dict.fromkeys(tags)), host=group[0].host, src_ip=src_ip, event_ids=ids[:100],
        count=len(ids))


_SOURCE_FIELDS = frozenset({"sourceip", "src_ip", "id.orig_h", "clientip", "c-ip", "sourceipaddress",
                            "source.ip", "ipaddress", "src", "remote_addr", "client_ip"})


def _sightings(session: Session, hits: Sequence[Hit]) -> None:
    """One ``seen`` sighting per indicator, and the counters on the indicators."""
    now = utcnow()
    per_indicator: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        per_indicator[hit.indicator].append(hit)
    for key, items in per_indicator.items():
        last = min(max(h.ts for h in items), now)
        session.add(Sighting(indicator_id=key, kind="seen", at=last, count=len(items),
                             actor="system:intel-matching", alert_id=None,
                             note=f"{len(items)} events, fields "
                                  f"{', '.join(sorted({h.field for h in items}))}"))
    rows = {r.id: r for chunk in chunks(list(per_indicator)) for r in session.execute(
        select(Indicator).where(Indicator.id.in_(chunk))).scalars()}
    for key, items in per_indicator.items():
        row = rows[key]
        last = min(max(h.ts for h in items), now)
        row.sightings_seen += len(items)
        if row.last_sighting is None or to_utc(row.last_sighting) < last:
            row.last_sighting = last


MATCH_KINDS = tuple(MatchKind)
