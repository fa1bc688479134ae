"""Detection speed on the OTRF corpus with every SigmaHQ Windows rule, against a baseline.

Prints, for Vigil and for a Zircolite-style baseline (pySigma SQLite backend, in-memory
SQLite), the detection-phase and end-to-end events/s, the peak RSS, and the ratios.
Run with ``make bench`` or ``python bench/detect.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import baseline
from common import DATASETS, PeakRss, figure
from vigil.app import Vigil
from vigil.core.config import load_settings
from vigil.detect.engine import Engine, EngineStats
from vigil.detect.hunt import compile_paths
from vigil.ingest.batches import ParseOptions
from vigil.ingest.files import ingest_inputs
from vigil.ingest.inputs import expand

OTRF = DATASETS / "otrf-atomic-windows"
SIGMA = DATASETS / "sigma"


def windows_rule_files() -> list[Path]:
    return sorted(p for folder in SIGMA.glob("rules*") for p in folder.rglob("*.yml")
                  if "/windows/" in str(p))


def vigil_run(workdir: Path, files: list[Path]) -> tuple[float, float]:
    started = time.perf_counter()
    ruleset = compile_paths([str(p) for p in files])
    compile_seconds = time.perf_counter() - started
    print(f"Vigil: {len(ruleset.rules):,} Windows rules compiled, {len(ruleset.problems)} not, "
          f"in {compile_seconds:.1f} s", flush=True)
    vigil = Vigil(load_settings(workdir / "vigil"))
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = ingest_inputs(expand([str(OTRF)]), vigil.store, vigil.db, ParseOptions(),
                                workers=2)
        ingest_seconds = time.perf_counter() - started
        stats = EngineStats()
        detections = sum(1 for _ in Engine(ruleset.rules).run(vigil.store, stats=stats))
        total = time.perf_counter() - started + compile_seconds
    vigil.close()
    figure("Vigil detection phase", stats.events, stats.seconds, None,
           f"{detections:,} detections, {stats.partitions} partitions, "
           f"{len(stats.failures)} rule failures")
    figure("Vigil end to end (zips -> detections)", summary.records, total, rss.peak,
           f"ingest {ingest_seconds:.1f} s, rules {compile_seconds:.1f} s")
    return summary.records / stats.seconds, summary.records / total


def baseline_run(files: list[Path]) -> tuple[float, float]:
    started = time.perf_counter()
    queries, failed = baseline.convert(files)
    convert_seconds = time.perf_counter() - started
    print(f"baseline: {len(queries):,} queries converted, {failed} rules not, "
          f"in {convert_seconds:.1f} s", flush=True)
    with PeakRss() as rss:
        run = baseline.run(OTRF, queries)
    total = convert_seconds + run.load_seconds + run.query_seconds
    figure("baseline query phase", run.events, run.query_seconds, None,
           f"{run.matches:,} matches")
    figure("baseline end to end", run.events, total, rss.peak,
           f"load {run.load_seconds:.1f} s, convert {convert_seconds:.1f} s")
    return run.events / run.query_seconds, run.events / total


def main() -> None:
    files = windows_rule_files()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        phase, end = vigil_run(Path(tmp), files)
    base_phase, base_end = baseline_run(files)
    print(f"ratio detection phase: {phase / base_phase:.1f}x   end to end: {end / base_end:.1f}x")


if __name__ == "__main__":
    main()
