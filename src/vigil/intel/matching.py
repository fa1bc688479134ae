"""Matching events against the active indicators: live (each stored batch) and retro-hunts.

For one relation of events (a batch registered from Arrow, or a stored partition over a time
window) one query gathers the comparable values of every field that carries observables (see
:mod:`vigil.intel.fields`), joins them with the exact index and, for IPv4 addresses, masks
each address once per prefix length present and joins with the network index. IPv6 networks
(few) are checked in Python over the distinct IPv6 addresses of the relation. No Python runs
per event.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from vigil.core.timeutil import to_utc, utcnow
from vigil.intel.fields import MatchKind, url_host_sql, value_sql
from vigil.intel.index import IndexView, naive_utc
from vigil.store.schema import HOST, ID, TS, quote

MAX_HITS = 1_000_000
"""A relation that matches more than this stops there (a runaway indicator such as a
resolver's address): the hits found are kept and the rest is reported as truncated."""
_IPV4 = r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"


@dataclass(frozen=True, slots=True)
class Hit:
    """One event field whose value matched an indicator."""

    indicator: str
    event_id: str
    ts: datetime
    host: str | None
    field: str
    value: str
    partition: str


@dataclass(frozen=True, slots=True)
class Relation:
    """Events to match: a table or registered view, its columns (lower-case name → actual name)
    and the partition it belongs to."""

    name: str
    columns: Mapping[str, str]
    partition: str


def _observed(relations: Sequence[Relation], fields: Mapping[MatchKind, Sequence[str]],
              where: str) -> list[str]:
    """SELECTs (one per matching column of each relation) of the raw values:
    (id, ts, host, field, kind, raw, part)."""
    parts: list[str] = []
    for relation in relations:
        host = quote(HOST) if HOST.lower() in relation.columns else "NULL"
        part = relation.partition.replace("'", "''")
        for kind, names in fields.items():
            for name in names:
                actual = relation.columns.get(name)
                if actual is None:
                    continue
                column = quote(actual)
                condition = f"{column} IS NOT NULL AND {column} <> ''"
                if where:
                    condition += f" AND ({where})"
                parts.append(f"SELECT {quote(ID)} AS eid, {quote(TS)} AS ts, {host} AS host, "
                             f"'{actual.replace(chr(39), chr(39) * 2)}' AS field, '{kind.value}' AS kind, "
                             f"CAST({column} AS VARCHAR) AS raw, '{part}' AS part "
                             f"FROM {relation.name} WHERE {condition}")
    return parts


def _normalised(kinds: Sequence[MatchKind]) -> str:
    """(kind, raw, ikind, v) for every DISTINCT raw value of ``o``: the value(s) it is compared
    as, and the index kind they are looked up in. Normalising distinct values only costs far
    less than normalising every event (field values repeat a lot)."""
    parts = []
    for kind in kinds:
        expression, _ = value_sql(kind, "raw")
        distinct = f"(SELECT DISTINCT raw FROM o WHERE kind = '{kind.value}')"
        parts.append(f"SELECT '{kind.value}' AS kind, raw, '{kind.value}' AS ikind, {expression} AS v "
                     f"FROM {distinct}")
        if kind is MatchKind.URL:
            parts.append(f"SELECT 'url' AS kind, raw, 'domain' AS ikind, {url_host_sql('raw')} AS v "
                         f"FROM {distinct}")
    return " UNION ALL ".join(parts)


_ACTIVE = "x.active_until > ?::TIMESTAMP AND (x.valid_from IS NULL OR x.valid_from <= ?::TIMESTAMP)"


def _exact_query(parts: list[str], kinds: Sequence[MatchKind], index: IndexView) -> str:
    """The distinct normalised values joined with the exact index, then back to the events."""
    return (f"WITH o AS ({' UNION ALL '.join(parts)}), n AS ({_normalised(kinds)}), "
            f"h AS (SELECT n.kind, n.raw, n.v, x.indicator FROM n JOIN {index.exact} x "
            f"ON x.kind = n.ikind AND x.value = n.v WHERE {_ACTIVE}) "
            f"SELECT h.indicator, o.eid, o.ts, o.host, o.field, h.v, o.part FROM h JOIN o "
            f"ON o.kind = h.kind AND o.raw = h.raw LIMIT {MAX_HITS}")


def _network_query(parts: list[str], index: IndexView) -> str:
    """Every distinct IPv4 address, masked once per prefix length present, joined with the
    network index, then back to the events. (A statement of its own: DuckDB 2.0 stalls on
    one statement that reads a CTE from both sides of a UNION ALL under a LIMIT.)"""
    masks = ", ".join(str(p) for p in index.prefixes)
    address, _ = value_sql(MatchKind.IP, "raw")
    octets = "string_split(v, '.')"
    return (f"WITH o AS ({' UNION ALL '.join(parts)}), "
            f"d AS (SELECT raw, {address} AS v FROM (SELECT DISTINCT raw FROM o)), "
            f"a AS (SELECT raw, v, unnest([{masks}]) AS prefix, "
            f"list_reduce(list_transform({octets}, lambda s: s::UBIGINT), "
            f"lambda acc, s: acc * 256 + s) AS num "
            f"FROM d WHERE regexp_matches(v, '{_IPV4}') "
            f"AND list_bool_and(list_transform({octets}, lambda s: s::UBIGINT < 256))), "
            f"h AS (SELECT a.raw, a.v, x.indicator FROM a JOIN {index.net4} x ON x.prefix = a.prefix "
            f"AND x.network = (a.num >> (32 - a.prefix)) << (32 - a.prefix) WHERE {_ACTIVE}) "
            f"SELECT h.indicator, o.eid, o.ts, o.host, o.field, h.v, o.part FROM h JOIN o ON o.raw = h.raw "
            f"LIMIT {MAX_HITS}")


def match_relations(connection: duckdb.DuckDBPyConnection, index: IndexView, relations: Sequence[Relation],
                    fields: Mapping[MatchKind, Sequence[str]], *, where: str = "",
                    params: Sequence[object] = (), now: datetime | None = None) -> list[Hit]:
    """The hits in ``relations`` against ``index`` (the whole index or a scoped part of it), in
    one exact and one network statement for all of them (each statement scans the index once,
    so a batch of thirty log sources costs two scans, not sixty). ``where`` narrows the events
    (with ``params``, once per column that is read)."""
    parts = _observed(relations, fields, where)
    if not parts or not index.size:
        return []
    moment = naive_utc(now or utcnow())
    present = {n for r in relations for n in r.columns}
    kinds = [k for k, names in fields.items() if any(n in present for n in names)]
    rows = connection.execute(_exact_query(parts, kinds, index),
                              [p for _ in parts for p in params] + [moment, moment]).fetchall()
    addresses = _observed(relations, {MatchKind.IP: fields.get(MatchKind.IP, ())}, where)
    if index.prefixes and addresses:
        rows += connection.execute(_network_query(addresses, index),
                                   [p for _ in addresses for p in params] + [moment, moment]).fetchall()
    hits = [Hit(r[0], r[1], to_utc(r[2]), r[3], r[4], r[5], r[6]) for r in rows]
    if addresses:
        hits.extend(_ipv6_hits(connection, index, addresses, params, moment))
    return hits


def _ipv6_hits(connection: duckdb.DuckDBPyConnection, index: IndexView, parts: list[str],
               params: Sequence[object], now: datetime) -> list[Hit]:
    networks = [n for n in index.net6 if n[2] > now and (n[3] is None or n[3] <= now)]
    if not networks:
        return []
    args = [p for _ in parts for p in params]
    observed = " UNION ALL ".join(parts)
    rows = connection.execute(f"SELECT eid, ts, host, field, trim(raw), part FROM ({observed}) "
                              "WHERE contains(raw, ':')", args).fetchall()
    hits: list[Hit] = []
    for eid, ts, host, field, value, partition in rows:
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            continue
        if address.ipv4_mapped is not None:
            continue  # ::ffff:a.b.c.d is matched as the IPv4 address
        hits.extend(Hit(key, eid, to_utc(ts), host, field, value, partition)
                    for network, key, _, _ in networks if address in network)
    return hits
