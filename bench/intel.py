"""Threat-intel matching cost: 1,000,000 active indicators against the OTRF corpus.

1. Stores 1,000,000 indicators of mixed types (IPv4 and IPv6 addresses, IPv4 networks from /8
   to /30, domains, URLs, e-mail addresses, MD5/SHA-1/SHA-256 hashes, file names), a few of
   them taken from the corpus so that matching has real hits.
2. Ingests the OTRF corpus twice into fresh stores through the file path (``vigil ingest``):
   once without matching, once with live matching against the 1,000,000 indicators, and
   prints how much matching adds to the ingestion time (target: under 20 %).
3. Imports 10,000 new indicators and retro-hunts them over the stored corpus (target: under
   30 s).

Run with ``python bench/intel.py`` (``make bench`` runs it too). Figures only, no assertions.
"""

from __future__ import annotations

import ipaddress
import random
import sys
import tempfile
import time
from pathlib import Path

from common import DATASETS, PeakRss
from vigil.app import Vigil
from vigil.core.config import load_settings
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import ingest_inputs
from vigil.ingest.inputs import expand
from vigil.intel import lists
from vigil.intel.live import IntelMatcher
from vigil.intel.normalize import make_input
from vigil.intel.types import IndicatorInput
from vigil.intel.writing import ingest_session

OTRF = DATASETS / "otrf-atomic-windows"
TOTAL = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
RETRO = 10_000
FROM_CORPUS = [  # values present in the OTRF recordings
    ("sha256", "4e4588d8a960b26983b9c2cdfe698c0b88b6b1f46705cdea019e34a8e5bbb3e7"),
    ("filename", "regsvr32.exe"), ("filename", "mimikatz.exe"), ("filename", "rundll32.exe"),
]


def _public_ipv4(rng: random.Random) -> str:
    while True:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global:
            return str(address)


def _values(rng: random.Random, count: int, tag: str) -> list[IndicatorInput]:
    """``count`` random indicators: 30 % IPv4, 5 % IPv4 networks, 2 % IPv6, 20 % domains,
    10 % URLs, 3 % e-mail, 25 % hashes, 5 % file names."""
    made: list[IndicatorInput] = []
    for i in range(count):
        roll = rng.random()
        word = f"{tag}{i}x{rng.getrandbits(40):x}"
        if roll < 0.30:
            item = make_input("ipv4", _public_ipv4(rng), "bench-ip")
        elif roll < 0.35:
            prefix = rng.choice([8, 12, 16, 20, 22, 24, 24, 24, 26, 28, 30])
            network = ipaddress.ip_network(f"{_public_ipv4(rng)}/{prefix}", strict=False)
            item = make_input("cidr", str(network), "bench-net")
        elif roll < 0.37:
            item = make_input("ipv6", str(ipaddress.IPv6Address((0x2a00 << 112) | rng.getrandbits(100))),
                              "bench-ip")
        elif roll < 0.57:
            item = make_input("domain", f"{word}.bad-{i % 97}.ru", "bench-dns")
        elif roll < 0.67:
            item = make_input("url", f"http://{word}.host.cn/p/{i}.exe", "bench-url")
        elif roll < 0.70:
            item = make_input("email", f"{word}@phish-{i % 13}.ru", "bench-mail")
        elif roll < 0.95:
            kind, bits = rng.choice([("md5", 128), ("sha1", 160), ("sha256", 256)])
            item = make_input(kind, f"{rng.getrandbits(bits):0{bits // 4}x}", "bench-hash")
        else:
            item = make_input("filename", f"{word}.exe", "bench-file")
        made.append(item)
    return made


def seed(vigil: Vigil, count: int) -> None:
    rng = random.Random(7)
    started = time.perf_counter()
    stored = 0
    corpus = [make_input(kind, value, "bench-corpus", confidence=90) for kind, value in FROM_CORPUS]
    with vigil.db.session() as session:
        allowlists = lists.active_lists(session, vigil.settings.intel)
    for start in range(0, count, 50_000):
        batch = _values(rng, min(50_000, count - start), f"s{start}")
        if start == 0:
            batch = corpus + batch[len(corpus):]
        with vigil.db.session() as session:
            result = ingest_session(session, batch, actor="cli:bench", allowlists=allowlists)
        stored += result.added
    seconds = time.perf_counter() - started
    print(f"seed: {stored:,} indicators stored in {seconds:.1f} s ({stored / seconds:,.0f}/s)", flush=True)


def ingest(folder: Path, matcher_db: Vigil | None) -> tuple[float, int, IntelMatcher | None, Vigil]:
    vigil = Vigil(load_settings(folder))
    if matcher_db is not None:  # share the state database that holds the indicators
        vigil._db = matcher_db.db
    matcher = None
    if matcher_db is not None:
        matcher = IntelMatcher(vigil.db, vigil.store, vigil.settings.intel)
        started = time.perf_counter()
        matcher.refresh(force=True)
        print(f"index: {matcher.index.size:,} active observables loaded in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = ingest_inputs(expand([str(OTRF)]), vigil.store, vigil.db, ParseOptions(), workers=2,
                                on_written=matcher)
        seconds = time.perf_counter() - started
    label = "with live matching" if matcher else "without matching"
    print(f"ingest OTRF {label}: {summary.records:,} records in {seconds:.1f} s "
          f"({summary.records / seconds:,.0f}/s), peak RSS {rss.peak / 2**20:,.0f} MiB", flush=True)
    return seconds, summary.records, matcher, vigil


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-intel-") as tmp:
        work = Path(tmp)
        intel = Vigil(load_settings(work / "intel"))
        seed(intel, TOTAL)
        plain, _, _, first = ingest(work / "plain", None)
        first.close()
        matched, _, matcher, vigil = ingest(work / "matched", intel)
        assert matcher is not None
        found = matcher.totals
        print(f"live matching: {found.events:,} events matched in {found.seconds:.1f} s "
              f"({found.events / max(found.seconds, 1e-9):,.0f} ev/s on the matching thread)", flush=True)
        print(f"live matching: {found.hits:,} hits, {found.alerts_created:,} alerts; adds "
              f"{(matched - plain) / plain * 100:+.1f} % to ingestion time (target < 20 %)", flush=True)
        rng = random.Random(11)
        fresh = _values(rng, RETRO, "retro")
        started = time.perf_counter()
        with vigil.db.session() as session:
            result = ingest_session(session, fresh, actor="cli:bench")
        imported = time.perf_counter() - started
        retro = matcher.retro(days=36500, indicator_ids=result.ids)
        print(f"retro-hunt: {RETRO:,} new indicators (imported in {imported:.1f} s) over the stored "
              f"corpus in {retro.seconds:.1f} s, {retro.hits:,} hits (target < 30 s)", flush=True)
        matcher.close()
        vigil.store.close()
        intel.close()


if __name__ == "__main__":
    main()
