"""Demo people and work: users of both teams, and a case in the middle of an investigation.

Run after the demo events were hunted (so the demo alerts exist): the analyst acknowledges the
PowerShell download cradle, opens a phishing case from it together with the SSH password
guessing from the same address, and the case is worked by security and operations: tasks
done and open, a comment that mentions the operations engineer, observables, one evidence
item with its custody log, and a GDPR Art. 33 clock running because personal data may be
involved. Running the demo again on the same data folder adds nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from vigil.alerts import service as alerts
from vigil.alerts.types import AlertFilter, AlertView
from vigil.app import Vigil
from vigil.cases import service as cases
from vigil.cases.enums import Phase, Stage, TaskStatus
from vigil.cases.policy import Policy
from vigil.cases.queries import CaseFilter
from vigil.cases.schemas import (
    CaseUpdate,
    CommentCreate,
    EvidenceCreate,
    ObservableCreate,
    TaskCreate,
    TaskUpdate,
)
from vigil.core.auth import SYSTEM, Principal
from vigil.core.timeutil import utcnow
from vigil.people import service as people

CASE_TITLE = "Download cradle on WKS-ANNA after SSH password guessing from 203.0.113.50"


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: str
    team: str
    display_name: str

    @property
    def password(self) -> str:
        return f"demo-{self.username}-password"


USERS = (DemoUser("admin", "admin", "security", "Demo Administrator"),
         DemoUser("alice", "analyst", "security", "Alice Analyst"),
         DemoUser("oscar", "responder", "operations", "Oscar Operations"),
         DemoUser("audrey", "auditor", "security", "Audrey Auditor"))


def seed_people(vigil: Vigil) -> list[DemoUser]:
    """The demo users (created once; their passwords are printed by ``vigil demo``)."""
    for user in USERS:
        if people.find_user(vigil.db, user.username) is None:
            people.add_user(vigil.db, SYSTEM, user.username, user.password, role=user.role,
                            team=user.team, email=f"{user.username}@example.org",
                            display_name=user.display_name)
    return list(USERS)


def _as(vigil: Vigil, username: str) -> Principal:
    return people.principal_of(people.get_user(vigil.db, username))


def _demo_alerts(vigil: Vigil) -> list[AlertView]:
    with vigil.db.session() as session:
        return list(alerts.list_alerts(session, AlertFilter(), limit=100).items)


def seed_case(vigil: Vigil) -> int | None:
    """The case mid-investigation; its id (None when the demo alerts are missing)."""
    existing = cases.list_cases(vigil.db, CaseFilter(q=CASE_TITLE), limit=1)
    if existing.items:
        return existing.items[0].id
    found = _demo_alerts(vigil)
    cradle = [a for a in found if "PowerShell" in a.rule_title]
    guessing = [a for a in found if "SSH" in a.rule_title or "sshd" in a.rule_title.lower()]
    if not cradle:
        return None
    alice, oscar = _as(vigil, "alice"), _as(vigil, "oscar")
    with vigil.db.session() as session:
        alerts.acknowledge(session, cradle[0].id, alice)
    policy = Policy.from_settings(vigil.settings)
    case = cases.open_from_alerts(vigil.db, [cradle[0].id, *(a.id for a in guessing[:1])], alice,
                                  template="phishing", title=CASE_TITLE,
                                  assignees=["alice", "oscar"], policy=policy)
    _work(vigil, case.id, alice, oscar, policy)
    return case.id


def _work(vigil: Vigil, case_id: int, alice: Principal, oscar: Principal, policy: Policy) -> None:
    now = utcnow()
    cases.update_case(vigil.db, case_id, CaseUpdate(
        stage=Stage.IN_PROGRESS, phase=Phase.CONTAINMENT, personal_data=True,
        aware_at=now - timedelta(hours=3)), alice, policy=policy)
    for task in cases.list_tasks(vigil.db, case_id)[:2]:
        cases.update_task(vigil.db, case_id, task.id, TaskUpdate(status=TaskStatus.DONE), alice)
    cases.add_task(vigil.db, case_id, TaskCreate(
        title="Isolate WKS-ANNA from the network and keep it powered on", owner="oscar",
        due_in="2h", mandatory=True), alice)
    cases.add_comment(vigil.db, case_id, CommentCreate(
        body="@oscar the script came from 203.0.113.50, the same address that guessed SSH "
             "passwords on the bastion. Can you isolate WKS-ANNA before the backup window?"), alice)
    cases.add_comment(vigil.db, case_id, CommentCreate(
        body="On it. The file server backup starts at 22:00; WKS-ANNA maps a share there."), oscar)
    for kind, value in (("ip", "203.0.113.50"), ("url", "http://203.0.113.50/a.ps1"),
                        ("host", "WKS-ANNA.corp.example")):
        observable = ObservableCreate.model_validate({"type": kind, "value": value,
                                                      "ioc": kind != "host"})
        cases.add_observable(vigil.db, case_id, observable, alice)
    memory = b"demo memory image of WKS-ANNA"
    cases.add_evidence(vigil.db, case_id, EvidenceCreate(
        name="WKS-ANNA-memory.raw", kind="memory", sha256=hashlib.sha256(memory).hexdigest(),
        size=len(memory), acquired_by="oscar", holder="oscar", location="evidence locker 2"), oscar)


def seed_work(vigil: Vigil) -> tuple[list[DemoUser], int | None]:
    """Users, then the case; returns both."""
    users = seed_people(vigil)
    return users, seed_case(vigil)
