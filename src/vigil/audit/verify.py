"""Verifying the audit chain: every edited, deleted or reordered record is reported.

The chain is read in sequence order. For each record:

- a gap in the sequence numbers means records were deleted (``missing``);
- a record whose own hash does not match its content was edited (``edited``), unless its
  content is intact under the sequence number of the place its ``prev_hash`` points to, in
  which case it was moved (``reordered``);
- a record whose ``prev_hash`` is not the hash of the record before it, with no gap to explain
  it, sits in the wrong place (``reordered``) or follows a forged or removed record
  (``broken_link``).

The head row must name the last record (records deleted at the end are ``missing``), and every
signed checkpoint must carry a valid signature and match the record it names: a chain rebuilt
from scratch by someone without the signing key fails there (``checkpoint``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from vigil.audit.chain import GENESIS, digest, record_hash
from vigil.audit.keys import key_id, signed_message, valid
from vigil.audit.models import AuditCheckpoint, AuditHead, AuditRecord
from vigil.core.db import StateDB
from vigil.core.timeutil import to_utc

_CHUNK = 5000


class ProblemKind(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    REORDERED = "reordered"
    BROKEN_LINK = "broken_link"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    seq: int
    detail: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.kind.value}: {self.detail}"


@dataclass(slots=True)
class Report:
    records: int = 0
    last_seq: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _records(db: StateDB) -> Iterator[AuditRecord]:
    after = -1
    while True:
        with db.session() as session:
            rows = session.scalars(select(AuditRecord).where(AuditRecord.seq > after)
                                   .order_by(AuditRecord.seq).limit(_CHUNK)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


class _Positions:
    """The place each record had in the chain, from the ``prev_hash`` links alone (so a record
    whose sequence number was changed can be told from one whose content was changed)."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self._known: dict[str, int] = {GENESIS: 0}

    def add(self, row: AuditRecord) -> None:
        self.links.setdefault(row.hash, row.prev_hash)

    def original(self, chain_hash: str) -> int | None:
        path: list[str] = []
        current = chain_hash
        while current not in self._known:
            if current not in self.links or len(path) > len(self.links):
                return None
            path.append(current)
            current = self.links[current]
        position = self._known[current]
        for link in reversed(path):
            position += 1
            self._known[link] = position
        return self._known[chain_hash]


def _moved(row: AuditRecord, positions: _Positions) -> int | None:
    """The sequence number the record had, when it is intact but was moved."""
    previous = positions.original(row.prev_hash)
    if previous is None:
        return None
    original = previous + 1
    if original != row.seq and digest(original, row.at, row.actor, row.action, row.object_type,
                                      row.object_id, row.before, row.after,
                                      row.prev_hash) == row.hash:
        return original
    return None


def _check_record(row: AuditRecord, previous: AuditRecord | None, positions: _Positions,
                  by_hash: dict[str, int], report: Report) -> None:
    expected_seq = previous.seq + 1 if previous else 1
    if row.seq > expected_seq:
        span = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
        report.problems.append(Problem(ProblemKind.MISSING, expected_seq,
                                       f"record(s) {span} deleted"))
    intact = record_hash(row) == row.hash
    moved = None if intact else _moved(row, positions)
    if moved is not None:
        report.problems.append(Problem(ProblemKind.REORDERED, row.seq,
                                       f"record {moved} was moved to position {row.seq}"))
    elif not intact:
        report.problems.append(Problem(ProblemKind.EDITED, row.seq,
                                       f"content does not match its hash ({row.action} "
                                       f"{row.object_type} {row.object_id} by {row.actor})"))
    linked = row.prev_hash == (previous.hash if previous else GENESIS)
    if not linked and row.seq == expected_seq and moved is None:
        origin = by_hash.get(row.prev_hash)
        kind, detail = ((ProblemKind.REORDERED, f"it follows record {origin} in the chain")
                        if origin is not None else
                        (ProblemKind.BROKEN_LINK, "the record before it was changed or removed"))
        report.problems.append(Problem(kind, row.seq, detail))


def _check_head(db: StateDB, report: Report) -> None:
    with db.session() as session:
        head = session.get(AuditHead, 1)
    if head is None:
        report.problems.append(Problem(ProblemKind.MISSING, 0, "the chain head row is gone"))
        return
    if head.seq > report.last_seq:
        report.problems.append(Problem(
            ProblemKind.MISSING, report.last_seq + 1,
            f"record(s) {report.last_seq + 1}..{head.seq} deleted from the end of the chain"))


def _check_checkpoints(db: StateDB, public: Ed25519PublicKey | None, hashes: dict[int, str],
                       report: Report) -> None:
    with db.session() as session:
        checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
    report.checkpoints = len(checkpoints)
    expected_key = key_id(public) if public is not None else None
    for point in checkpoints:
        at_iso = to_utc(point.at).isoformat(timespec="microseconds")
        if public is not None:
            try:
                signature = base64.b64decode(point.signature, validate=True)
            except (binascii.Error, ValueError):
                signature = b""
            if point.key_id != expected_key or not valid(
                    public, signature, signed_message(point.seq, point.hash, at_iso)):
                report.problems.append(Problem(ProblemKind.CHECKPOINT, point.seq,
                                               f"checkpoint {point.id} has no valid signature"))
                continue
        actual = hashes.get(point.seq)
        if actual is None:
            report.problems.append(Problem(ProblemKind.CHECKPOINT, point.seq,
                                           f"checkpoint {point.id} names a record that is gone"))
        elif actual != point.hash:
            report.problems.append(Problem(ProblemKind.CHECKPOINT, point.seq,
                                           f"checkpoint {point.id}: the chain up to here was rewritten"))


def verify(db: StateDB, public: Ed25519PublicKey | None = None) -> Report:
    """Check the whole chain (and the checkpoints' signatures when ``public`` is given)."""
    report = Report()
    by_hash: dict[str, int] = {}
    hashes: dict[int, str] = {}
    positions = _Positions()
    for row in _records(db):
        by_hash.setdefault(row.hash, row.seq)
        hashes[row.seq] = row.hash
        positions.add(row)
    previous: AuditRecord | None = None
    for row in _records(db):
        _check_record(row, previous, positions, by_hash, report)
        previous = row
        report.records += 1
        report.last_seq = row.seq
    _check_head(db, report)
    _check_checkpoints(db, public, hashes, report)
    return report
