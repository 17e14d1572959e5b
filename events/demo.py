"""Demo events for ``seed_demo``: upcoming salons and lectures with invitations sent and answered,
one in draft, and a past workshop with attendance, no-shows and feedback. Every change goes
through the services; deterministic, and idempotent (an event that exists by title is left)."""

import datetime as dt
import random
from typing import Any, TextIO

from django.utils import timezone

from events.models import Event, Invitation
from events.services.attendance import feedback_submit, invitation_check_in, no_shows_mark_due
from events.services.invitations import invitations_send_due
from events.services.rsvp import invitation_rsvp

TOP = ["PLATINUM", "DIAMOND", "PRIVATE"]
EVENTS: list[dict[str, Any]] = [
    {
        "title_en": "Wealth planning salon: allocating assets in a low-rate era",
        "title_zh_hans": "财富规划沙龙——低利率时代的资产配置",
        "description_en": "Our chief investment strategist on deposits, bonds and funds in 2027.",
        "description_zh_hans": "首席投资策略师解读 2027 年存款、债券与基金配置。",
        "kind": "salon",
        "venue": "Lujiazui branch, VIP lounge, 8F",
        "days": 12,
        "capacity": 30,
        "max_seats": 2,
        "target_tiers": ["GOLD", *TOP],
        "attendance_points": 300,
        "publish": True,
    },
    {
        "title_en": "Private banking health and wellness salon",
        "title_zh_hans": "私人银行健康养生沙龙",
        "description_en": "A tea ceremony and a talk by a traditional Chinese medicine doctor.",
        "description_zh_hans": "茶艺体验与中医专家养生讲座。",
        "kind": "salon",
        "venue": "Bund private banking centre",
        "days": 30,
        "capacity": 16,
        "max_seats": 2,
        "target_tiers": ["DIAMOND", "PRIVATE"],
        "attendance_points": 500,
        "publish": True,
    },
    {
        "title_en": "Individual income tax: special deductions explained",
        "title_zh_hans": "个人所得税专项附加扣除讲座",
        "description_en": "How to claim children's education, elderly care and housing loans.",
        "description_zh_hans": "子女教育、赡养老人、住房贷款利息等专项附加扣除如何申报。",
        "kind": "lecture",
        "venue": "Online",
        "days": 45,
        "capacity": 200,
        "max_seats": 1,
        "target_tiers": [],
        "attendance_points": 100,
        "publish": False,
    },
    {
        "title_en": "Overseas education planning workshop",
        "title_zh_hans": "子女海外教育规划工作坊",
        "description_en": "Schools, visas and foreign-currency savings plans.",
        "description_zh_hans": "择校、签证与外币教育储蓄规划。",
        "kind": "workshop",
        "venue": "Jing'an branch, 3F",
        "days": -10,
        "capacity": 20,
        "max_seats": 2,
        "target_tiers": TOP,
        "attendance_points": 300,
        "publish": True,
    },
]


def _write(stdout: TextIO | None, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def seed_events(*, stdout: TextIO | None = None) -> dict[str, int]:
    rng = random.Random(20261202)  # noqa: S311 - demo data, not secrets
    now = timezone.now()
    created = 0
    for spec in EVENTS:
        if Event.objects.filter(title_en=spec["title_en"]).exists():
            continue
        starts = (now + dt.timedelta(days=spec["days"])).replace(
            hour=6, minute=30, second=0, microsecond=0
        )  # 14:30 in Shanghai
        past = spec["days"] < 0
        if past:
            invite_at = starts - dt.timedelta(days=21)
        elif spec["days"] < 20:
            invite_at = now - dt.timedelta(days=1)  # sent: members have answered
        else:
            invite_at = now + dt.timedelta(days=5)  # scheduled
        event = Event.objects.create(
            title_en=spec["title_en"],
            title_zh_hans=spec["title_zh_hans"],
            description_en=spec["description_en"],
            description_zh_hans=spec["description_zh_hans"],
            kind=spec["kind"],
            venue=spec["venue"],
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=2),
            rsvp_deadline=starts - dt.timedelta(days=2),
            invite_at=invite_at,
            capacity=spec["capacity"],
            max_seats=spec["max_seats"],
            target_tiers=spec["target_tiers"],
            attendance_points=spec["attendance_points"],
            status=Event.Status.PUBLISHED if spec["publish"] else Event.Status.DRAFT,
        )
        created += 1
        if event.status != Event.Status.PUBLISHED or event.invite_at > now:
            continue
        invitations_send_due(now=event.invite_at)
        answered_at = event.invite_at + dt.timedelta(hours=2)
        invitations = list(Invitation.objects.filter(event=event).order_by("invited_at", "id"))
        for invitation in invitations[: event.capacity + 5]:
            answer = "decline" if rng.random() < 0.15 else "accept"
            seats = rng.choice([1, 1, 2]) if event.max_seats > 1 else 1
            invitation_rsvp(invitation=invitation, response=answer, seats=seats, now=answered_at)
        if past:
            for invitation in Invitation.objects.filter(event=event, status="accepted"):
                if rng.random() < 0.8:
                    invitation_check_in(event=event, code=invitation.check_in_code, now=starts)
            no_shows_mark_due(now=event.ends_at + dt.timedelta(minutes=5))
            for invitation in Invitation.objects.filter(event=event, status="attended"):
                if rng.random() < 0.7:
                    feedback_submit(
                        invitation=invitation,
                        rating=rng.choice([4, 5, 5, 3]),
                        nps=rng.choice([8, 9, 10, 10, 7]),
                        comment=rng.choice(["", "很有收获", "Very useful", "希望多举办"]),
                    )
    _write(stdout, f"events: {created} demo events created\n")
    return {"events": created}
