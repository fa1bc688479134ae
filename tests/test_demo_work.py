"""The demo seeds users of both teams and a case in the middle of an investigation, once."""

from __future__ import annotations

from vigil.app import Vigil
from vigil.cases import service as cases
from vigil.cases.queries import CaseFilter
from vigil.demo import load_demo
from vigil.people import service as people


def test_demo_seeds_people_and_a_case_mid_investigation(vigil: Vigil) -> None:
    first = load_demo(vigil)
    assert first.alerts >= 2 and first.case_id is not None
    teams = {u.username: u.team for u in people.list_users(vigil.db).users}
    assert teams == {"admin": "security", "alice": "security", "oscar": "operations",
                     "audrey": "security"}
    detail = cases.get_case_detail(vigil.db, first.case_id)
    assert detail.stage == "in_progress" and detail.phase == "containment"
    assert {a.username for a in detail.assignees} == {"alice", "oscar"}
    assert len(detail.alert_ids) == 2
    statuses = {t.status for t in detail.tasks}
    assert {"done", "todo"} <= statuses
    assert any(t.owner_name == "oscar" for t in detail.tasks)
    assert any("GDPR" in c.name for c in detail.clocks)
    assert any("@oscar" in c.body for c in detail.comments)
    assert detail.evidence and detail.observables
    again = load_demo(vigil)
    assert again.case_id == first.case_id and again.alerts == 0
    assert cases.list_cases(vigil.db, CaseFilter()).total == 1


def test_grouping_policy_follows_the_settings(tmp_path: object) -> None:
    from pathlib import Path

    from vigil.alerts.types import EntityKind
    from vigil.core.config import load_settings

    assert isinstance(tmp_path, Path)
    (tmp_path / "vigil.toml").write_text('[alerts]\ngroup_window_seconds = 600\ngroup_by = ["user"]\n')
    policy = Vigil(load_settings(tmp_path)).grouping
    assert policy.window_seconds == 600 and policy.entity_order == (EntityKind.USER,)
