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


def _observed(relation: str, columns: Mapping[str, str], fields: Mapping[MatchKind, Sequence[str]],
              where: str) -> list[str]:
    """SELECTs (one per matching column) of (id, ts, host, field, kind, value)."""
    parts: list[str] = []
    host = quote(HOST) if HOST.lower() in columns else "NULL"
    for kind, names in fields.items():
        for name in names:
            actual = columns.get(name)
            if actual is None:
                continue
            expression, _ = value_sql(kind, actual)
            head = (f"SELECT {quote(ID)} AS eid, {quote(TS)} AS ts, {host} AS host, "
                    f"'{actual.replace(chr(39), chr(39) * 2)}' AS field")
            condition = f"{quote(actual)} IS NOT NULL AND {quote(actual)} <> ''"
            if where:
                condition += f" AND ({where})"
            parts.append(f"{head}, '{kind.value}' AS kind, {expression} AS v FROM {relation} "
                         f"WHERE {condition}")
            if kind is MatchKind.URL:
                parts.append(f"{head}, 'domain' AS kind, {url_host_sql(actual)} AS v FROM {relation} "
                             f"WHERE {condition}")
    return parts


_ACTIVE = "x.active_until > ?::TIMESTAMP AND (x.valid_from IS NULL OR x.valid_from <= ?::TIMESTAMP)"


def _exact_query(parts: list[str], index: IndexView) -> str:
    """Every observed value joined with the exact index."""
    return (f"WITH o AS ({' UNION ALL '.join(parts)}) "
            f"SELECT x.indicator, o.eid, o.ts, o.host, o.field, o.v FROM o JOIN {index.exact} x "
            f"ON x.kind = o.kind AND x.value = o.v WHERE {_ACTIVE} LIMIT {MAX_HITS}")


def _network_query(parts: list[str], index: IndexView) -> str:
    """Every observed IPv4 address, masked once per prefix length present, joined with the
    network index. (A separate statement: DuckDB 2.0 stalls on one statement that reads a CTE
    from both sides of a UNION ALL under a LIMIT.)"""
    masks = ", ".join(str(p) for p in index.prefixes)
    octets = "string_split(v, '.')"
    return (f"WITH o AS ({' UNION ALL '.join(parts)}) "
            f"SELECT x.indicator, a.eid, a.ts, a.host, a.field, a.v FROM ("
            f"SELECT eid, ts, host, field, v, unnest([{masks}]) AS prefix, "
            f"list_reduce(list_transform({octets}, lambda s: s::UBIGINT), "
            f"lambda acc, s: acc * 256 + s) AS num "
            f"FROM o WHERE regexp_matches(v, '{_IPV4}') "
            f"AND list_bool_and(list_transform({octets}, lambda s: s::UBIGINT < 256))) a "
            f"JOIN {index.net4} x ON x.prefix = a.prefix "
            f"AND x.network = (a.num >> (32 - a.prefix)) << (32 - a.prefix) WHERE {_ACTIVE} LIMIT {MAX_HITS}")


def match_relation(connection: duckdb.DuckDBPyConnection, index: IndexView, relation: str,
                   columns: Mapping[str, str], fields: Mapping[MatchKind, Sequence[str]], partition: str,
                   *, where: str = "", params: Sequence[object] = (),
                   now: datetime | None = None) -> list[Hit]:
    """The hits in ``relation`` (a table or view name) whose columns are ``columns`` (lower-case
    name → actual name), against ``index`` (the whole index or a scoped part of it). ``where``
    narrows the events (with ``params``)."""
    parts = _observed(relation, columns, fields, where)
    if not parts or not index.size:
        return []
    moment = naive_utc(now or utcnow())
    rows = connection.execute(_exact_query(parts, index),
                              [p for _ in parts for p in params] + [moment, moment]).fetchall()
    if index.prefixes:
        addresses = _observed(relation, columns, {MatchKind.IP: fields.get(MatchKind.IP, ())}, where)
        if addresses:
            rows += connection.execute(_network_query(addresses, index),
                                       [p for _ in addresses for p in params] + [moment, moment]).fetchall()
    hits = [Hit(r[0], r[1], to_utc(r[2]), r[3], r[4], r[5], partition) for r in rows]
    hits.extend(_ipv6_hits(connection, index, relation, columns, fields, partition, where, params, moment))
    return hits


def _ipv6_hits(connection: duckdb.DuckDBPyConnection, index: IndexView, relation: str,
               columns: Mapping[str, str], fields: Mapping[MatchKind, Sequence[str]], partition: str,
               where: str, params: Sequence[object], now: datetime) -> list[Hit]:
    networks = [n for n in index.net6 if n[2] > now and (n[3] is None or n[3] <= now)]
    if not networks:
        return []
    parts = [p for p in _observed(relation, columns, {MatchKind.IP: fields.get(MatchKind.IP, ())}, where)]
    if not parts:
        return []
    args = [p for _ in parts for p in params]
    rows = connection.execute(f"SELECT eid, ts, host, field, v FROM ({' UNION ALL '.join(parts)}) "
                              "WHERE contains(v, ':')", args).fetchall()
    hits: list[Hit] = []
    for eid, ts, host, field, value in rows:
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            continue
        hits.extend(Hit(key, eid, to_utc(ts), host, field, value, partition)
                    for network, key, _, _ in networks if address in network)
    return hits
