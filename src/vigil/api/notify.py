"""``/api/v1/notify``: notification channels, rules and the delivery log (``notify:admin``).

Secrets go in (``secret`` on a channel) and never come out: a channel shows ``has_secret``.
``POST /notify/channels/{id}/test`` sends a test message at once and says how it went; the
delivery log keeps every message with each attempt's HTTP status or SMTP reply.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from vigil.api.deps import VigilDep, requires
from vigil.core.auth import Permission, Principal
from vigil.respond import service
from vigil.respond.models import DeliveryStatus
from vigil.respond.schemas import (
    MAX_ID,
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    RuleIn,
    RuleOut,
    RulePatch,
    TestResult,
)
from vigil.respond.service import MAX_PAGE

router = APIRouter(prefix="/api/v1/notify", tags=["notifications"])

NotifyAdmin = Annotated[Principal, requires(Permission.NOTIFY_ADMIN)]
ChannelId = Annotated[int, Path(ge=1, le=MAX_ID)]
RuleId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class TestIn(BaseModel):
    """Where a test e-mail goes (default: the channel's first fixed address)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = None


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(vigil: VigilDep, _who: NotifyAdmin) -> list[ChannelOut]:
    return service.list_channels(vigil.db)


@router.post("/channels", response_model=ChannelOut, status_code=201)
def create_channel(body: Annotated[ChannelIn, Body()], vigil: VigilDep,
                   who: NotifyAdmin) -> ChannelOut:
    """Add a channel: ``webhook``, ``slack``, ``teams`` or ``email`` with its ``config``."""
    return service.create_channel(vigil.db, who, body)


@router.get("/channels/{channel_id}", response_model=ChannelOut)
def get_channel(channel_id: ChannelId, vigil: VigilDep, _who: NotifyAdmin) -> ChannelOut:
    return service.get_channel(vigil.db, channel_id)


@router.patch("/channels/{channel_id}", response_model=ChannelOut)
def update_channel(channel_id: ChannelId, body: ChannelPatch, vigil: VigilDep,
                   who: NotifyAdmin) -> ChannelOut:
    """Change a channel: ``config`` keys merge into its settings; ``"secret": null`` removes
    the secret."""
    return service.update_channel(vigil.db, who, channel_id, body)


@router.delete("/channels/{channel_id}", status_code=204, response_class=Response)
def delete_channel(channel_id: ChannelId, vigil: VigilDep, who: NotifyAdmin) -> Response:
    """Remove a channel that no rule uses (409 otherwise)."""
    service.delete_channel(vigil.db, who, channel_id)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/test", response_model=TestResult)
def test_channel(channel_id: ChannelId, vigil: VigilDep, who: NotifyAdmin,
                 body: TestIn | None = None) -> TestResult:
    """Send a test message now; ``ok`` false with the error when the channel fails."""
    return service.test_channel(vigil.db, who, channel_id, vigil.settings.notify,
                                to=body.to if body else None)


@router.get("/rules", response_model=list[RuleOut])
def list_rules(vigil: VigilDep, _who: NotifyAdmin) -> list[RuleOut]:
    return service.list_rules(vigil.db)


@router.post("/rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, vigil: VigilDep, who: NotifyAdmin) -> RuleOut:
    """Add a rule: events of ``topics`` (at least ``min_severity``) go to the channel, to the
    people the event names (``event_recipients``) and/or fixed ``addresses`` (e-mail)."""
    return service.create_rule(vigil.db, who, body)


@router.get("/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: RuleId, vigil: VigilDep, _who: NotifyAdmin) -> RuleOut:
    return service.get_rule(vigil.db, rule_id)


@router.patch("/rules/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: RuleId, body: RulePatch, vigil: VigilDep, who: NotifyAdmin) -> RuleOut:
    return service.update_rule(vigil.db, who, rule_id, body)


@router.delete("/rules/{rule_id}", status_code=204, response_class=Response)
def delete_rule(rule_id: RuleId, vigil: VigilDep, who: NotifyAdmin) -> Response:
    service.delete_rule(vigil.db, who, rule_id)
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(vigil: VigilDep, _who: NotifyAdmin, status: DeliveryStatus | None = None,
                    channel_id: OptionalId = None, rule_id: OptionalId = None,
                    event_id: OptionalId = None, before: OptionalId = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> DeliveryPage:
    """Deliveries newest first; pass ``next_before`` as ``before`` for the next page."""
    return service.list_deliveries(vigil.db, status=status, channel=channel_id, rule=rule_id,
                                   event_id=event_id, before=before, limit=limit)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(delivery_id: DeliveryId, vigil: VigilDep, _who: NotifyAdmin) -> DeliveryDetail:
    """One delivery with every attempt (HTTP status or SMTP reply, error, duration)."""
    return service.get_delivery(vigil.db, delivery_id)


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
def retry_delivery(delivery_id: DeliveryId, vigil: VigilDep, who: NotifyAdmin) -> DeliveryOut:
    """Send a failed delivery again at the next pass (409 unless it failed)."""
    return service.retry_delivery(vigil.db, who, delivery_id)
