"""Which event fields carry which kind of observable, and how a field's text is normalised
in SQL so that it compares with the canonical indicator values.

Field names are matched case-insensitively against the columns of each partition (DuckDB
names are case-insensitive). ``intel.fields`` in the settings adds names per indicator type.
The lists cover Windows (Sysmon, Security), Zeek, Suricata EVE, web access logs, CloudTrail,
ECS-style and common syslog key=value names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from vigil.intel.types import HASH_TYPES, IndicatorType


class MatchKind(StrEnum):
    """What an event value is compared as."""

    IP = "ip"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    HASH = "hash"
    FILENAME = "filename"
    JA3 = "ja3"
    USER_AGENT = "ua"


def kind_of(kind: IndicatorType) -> MatchKind | None:
    """The match kind of an indicator type (None for CIDRs and patterns, matched apart)."""
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        return MatchKind.IP
    if kind in HASH_TYPES:
        return MatchKind.HASH
    return {IndicatorType.DOMAIN: MatchKind.DOMAIN, IndicatorType.URL: MatchKind.URL,
            IndicatorType.EMAIL: MatchKind.EMAIL, IndicatorType.FILENAME: MatchKind.FILENAME,
            IndicatorType.JA3: MatchKind.JA3,
            IndicatorType.USER_AGENT: MatchKind.USER_AGENT}.get(kind)


def index_value(kind: MatchKind, value: str) -> str:
    """The form of a canonical indicator value in the match index."""
    if kind in (MatchKind.EMAIL, MatchKind.FILENAME, MatchKind.IP):
        return value.lower()
    return value


DEFAULT_FIELDS: dict[MatchKind, tuple[str, ...]] = {
    MatchKind.IP: (
        "sourceip", "destinationip", "ipaddress", "src_ip", "dest_ip", "dst_ip", "id.orig_h",
        "id.resp_h", "clientip", "client_ip", "c-ip", "s-ip", "sourceipaddress", "sourceaddress",
        "destaddress", "destinationaddress", "remote_addr", "remoteaddress", "remoteip", "src",
        "dst", "source.ip", "destination.ip", "client.ip", "server.ip", "callerip",
        "clientaddress", "src_addr", "dst_addr", "ip", "addr", "rhost", "tx_hosts", "rx_hosts",
    ),
    MatchKind.DOMAIN: (
        "queryname", "query", "destinationhostname", "dns.query", "dns.rrname", "rrname",
        "rdata", "server_name", "servername", "sni", "tls.sni", "cs-host", "http.hostname",
        "hostname_requested", "url.domain", "destination.domain", "dns.question.name",
        "requesthost", "http_host", "host",
    ),
    MatchKind.URL: ("url", "url.full", "request_url", "requesturl", "http.url", "targeturl",
                    "uri_full", "cs-url"),
    MatchKind.EMAIL: ("senderaddress", "recipientaddress", "sender", "recipient", "mailfrom",
                      "rcptto", "from", "to", "email", "user_email", "email.from.address",
                      "email.to.address"),
    MatchKind.HASH: ("hashes", "hash", "md5", "sha1", "sha256", "sha512", "file.hash.md5",
                     "file.hash.sha1", "file.hash.sha256", "filehash", "process.hash.sha256"),
    MatchKind.FILENAME: ("image", "targetfilename", "originalfilename", "file.name", "filename",
                         "file_name", "process.executable", "newprocessname", "processname"),
    MatchKind.JA3: ("ja3", "ja3_hash", "tls.ja3.hash", "tls.ja3", "ja3.hash"),
    MatchKind.USER_AGENT: ("user_agent", "useragent", "http_user_agent", "cs(user-agent)",
                           "user_agent.original", "http.user_agent", "http.http_user_agent"),
}


def field_map(extra: Mapping[str, Sequence[str]]) -> dict[MatchKind, tuple[str, ...]]:
    """The default field lists plus ``intel.fields`` (keyed by indicator type or match kind)."""
    fields = {kind: list(names) for kind, names in DEFAULT_FIELDS.items()}
    for key, names in extra.items():
        try:
            kind = MatchKind(key)
        except ValueError:
            found = kind_of(IndicatorType.parse(key)) if key != "cidr" else MatchKind.IP
            if found is None:
                continue
            kind = found
        fields[kind].extend(n.lower() for n in names)
    return {kind: tuple(dict.fromkeys(names)) for kind, names in fields.items()}


def _url_sql(column: str) -> str:
    full = f"(CASE WHEN {column} LIKE '%://%' THEN trim({column}) ELSE 'http://' || trim({column}) END)"
    head = f"lower(regexp_extract({full}, '^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+)', 1))"
    rest = f"regexp_extract({full}, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+([^#]*)', 1)"
    path = f"(CASE WHEN {rest} = '' THEN '/' WHEN left({rest}, 1) = '?' THEN '/' || {rest} ELSE {rest} END)"
    return f"{head} || {path}"


def suffixes_sql(expression: str) -> str:
    """Every parent name of a host name, itself included (``a.b.c`` → a.b.c, b.c, c)."""
    parts = f"string_split({expression}, '.')"
    return (f"unnest(list_transform(range(0, len({parts})), "
            f"lambda i: array_to_string({parts}[i + 1:], '.')))")


def value_sql(kind: MatchKind, column: str) -> tuple[str, bool]:
    """The SQL of the comparable value(s) of an expression (a quoted column, or ``raw``), and
    whether it yields a list to unnest."""
    if kind is MatchKind.IP:
        return f"regexp_replace(lower(trim({column})), '^::ffff:', '')", False
    if kind is MatchKind.DOMAIN:
        return suffixes_sql(f"rtrim(lower(trim({column})), '.')"), True
    if kind is MatchKind.URL:
        return _url_sql(column), False
    if kind is MatchKind.HASH:
        return f"unnest(regexp_extract_all(lower({column}), '[0-9a-f]{{32,128}}'))", True
    if kind is MatchKind.FILENAME:
        return f"lower(regexp_extract({column}, '([^\\\\/]+)$', 1))", False
    if kind in (MatchKind.EMAIL, MatchKind.JA3):
        return f"lower(trim({column}))", False
    return f"trim({column})", False


def url_host_sql(column: str) -> str:
    """The host of a URL expression, with its parent names (a domain indicator matches URLs)."""
    host = f"lower(regexp_extract({column}, '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#@]+)', 1))"
    return suffixes_sql(host)
