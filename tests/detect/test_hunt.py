"""Hunting files with rules, filters and correlations together, as ``vigil hunt`` does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import VIGIL
from vigil.detect.hunt import compile_paths, hunt_files

RULES = """title: Failed SSH password
id: 3c0d5e6f-1a2b-4c3d-8e9f-0a1b2c3d4e5f
name: ssh_failed_password
status: test
author: Hunt Tester
logsource: {product: linux, service: sshd}
detection:
    selection: {outcome: failure, auth_method: password}
    condition: selection
level: low
---
title: SSH password guessing from one address
id: 7d8e9f0a-1b2c-4d3e-9f4a-5b6c7d8e9f0a
status: test
author: Hunt Tester
correlation:
    type: event_count
    rules: [ssh_failed_password]
    group-by: [src_ip]
    timespan: 1m
    condition: {gte: 5}
level: high
---
title: Ignore the scanner
id: 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b
status: test
logsource: {product: linux, service: sshd}
filter:
    rules: [ssh_failed_password]
    selection: {src_ip: 192.0.2.99}
    condition: not selection
"""


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    lines = [f"Mar  1 10:00:{s:02d} bastion sshd[42]: Failed password for root from "
             f"203.0.113.7 port {4000 + s} ssh2" for s in range(6)]
    lines += [f"Mar  1 10:01:{s:02d} bastion sshd[43]: Failed password for root from "
              f"192.0.2.99 port {5000 + s} ssh2" for s in range(6)]
    lines += ["Mar  1 10:05:00 bastion sshd[44]: Failed password for bob from 198.51.100.4 "
              "port 6000 ssh2"]
    logs = tmp_path / "auth.log"
    logs.write_text("\n".join(lines) + "\n")
    return rules, logs


def test_filters_and_correlations_in_a_hunt(case: tuple[Path, Path]) -> None:
    rules, logs = case
    ruleset = compile_paths([str(rules)])
    assert not ruleset.problems and len(ruleset.correlations) == 1
    result = hunt_files(ruleset.rules, [str(logs)], ruleset=ruleset, workers=1)
    (hit,) = result.correlations
    assert hit.group == {"src_ip": "203.0.113.7"} and hit.count == 6
    assert hit.rule.author == "Hunt Tester"
    # The base rule only feeds the correlation (generate is false): no detections of its own.
    assert result.detections == []


def test_vigil_hunt_prints_correlation_hits(case: tuple[Path, Path], tmp_path: Path) -> None:
    rules, logs = case
    run = subprocess.run([*VIGIL, "--data-dir", str(tmp_path / "d"), "hunt", "--rules",
                          str(rules), str(logs), "-o", "json"], capture_output=True, text=True,
                         check=True)
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["correlation"] for r in records if "correlation" in r] == [
        "SSH password guessing from one address"]
