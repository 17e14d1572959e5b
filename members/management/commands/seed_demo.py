"""``manage.py seed_demo``: a demo programme a person can click through.

Creates one user per staff role and an ``integration`` service account (credentials printed),
about 1,000 members with monthly asset snapshots, and whatever the other apps add through their
``seed_*`` functions. Deterministic and idempotent: running it twice changes nothing.
"""

import datetime as dt
import random
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from loyalty import roles
from loyalty.timeutils import add_months, business_today, month_end
from members.models import AssetSnapshot, Member

# Demo accounts only (printed by the command); never used outside seed data.
DEMO_PASSWORD_SUFFIX = "-demo-2026"  # noqa: S105
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
    "彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金"
    "石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍"
    "建华红梅鑫波斌宇浩凯健俊帆帅旭宁晨阳文博志强佳怡子涵欣怡梓萱"
    "雨涵诗琪"
)
CITIES = [
    ("Shanghai", "SH"),
    ("Beijing", "BJ"),
    ("Shenzhen", "SZ"),
    ("Guangzhou", "GZ"),
    ("Hangzhou", "HZ"),
    ("Chengdu", "CD"),
    ("Nanjing", "NJ"),
    ("Wuhan", "WH"),
]
OCCUPATIONS = [
    "engineer",
    "teacher",
    "doctor",
    "civil servant",
    "business owner",
    "retired",
    "sales",
    "finance",
]
INCOME_BANDS = ["<100k", "100k-300k", "300k-1m", "1m-3m", ">3m"]
STAFF = [
    ("admin", roles.PROGRAMME_ADMIN, True),
    ("marketing", roles.MARKETING, False),
    ("operations", roles.OPERATIONS, False),
    ("approver", roles.APPROVER, False),
    ("approver2", roles.APPROVER, False),
    ("integration", roles.INTEGRATION, False),
]


def _money(value: float | int) -> Decimal:
    return Decimal(int(value * 100)) / 100


class Command(BaseCommand):
    help = "Create a demo programme: staff users per role, ~1,000 members with asset snapshots."

    def add_arguments(self, parser):
        parser.add_argument(
            "--members", type=int, default=1000, help="How many members (default 1000)."
        )
        parser.add_argument("--months", type=int, default=4, help="Monthly snapshots per member.")
        parser.add_argument(
            "--seed", type=int, default=20261128, help="Random seed (deterministic data)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off (creates accounts with published passwords).",
        )

    def handle(self, *args, members: int, months: int, seed: int, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with published passwords; it refuses to run with "
                "DEBUG off. Pass --force if this really is a demo system."
            )
        if members < 0 or months < 0:
            self.stderr.write(self.style.ERROR("--members and --months must not be negative."))
            raise SystemExit(2)
        self._staff()
        self._members(count=members, months=months, seed=seed)
        for seeder in self._app_seeders():
            seeder(stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS("Demo data ready. Open http://127.0.0.1:8000/admin/ or /api/docs/")
        )

    def _app_seeders(self):
        """The other apps' demo data, in dependency order, where the app provides it."""
        from importlib import import_module

        seeders = []
        for module, name in [
            ("members.demo_tiers", "seed_tiers"),
            ("members.demo_tiers", "seed_tier_evaluation"),
            ("points.demo", "seed_points"),
            ("members.demo_segments", "seed_segments"),
            ("rewards.demo", "seed_rewards"),
            ("events.demo", "seed_events"),
            ("insights.demo", "seed_insights"),
        ]:
            try:
                seeders.append(getattr(import_module(module), name))
            except ModuleNotFoundError:
                continue
        return seeders

    @transaction.atomic
    def _staff(self) -> None:
        self.stdout.write("Staff and service accounts (username / password / role):")
        for username, role, superuser in STAFF:
            password = f"{username}{DEMO_PASSWORD_SUFFIX}"
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_staff": role != roles.INTEGRATION, "is_superuser": superuser},
            )
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get(name=role))
            self.stdout.write(
                f"  {username:<12} {password:<24} {role}{' (superuser)' if superuser else ''}"
            )

    def _members(self, *, count: int, months: int, seed: int) -> None:
        rng = random.Random(seed)
        today = business_today()
        # The last ``months`` month ends before this month, oldest first.
        as_of_dates = [month_end(add_months(today, -back)) for back in range(months, 0, -1)]
        existing = set(Member.objects.values_list("customer_no", flat=True))
        batch: list[Member] = []
        profiles = []
        for index in range(count):
            customer_no = f"D{index + 1:07d}"
            city, prefix = rng.choice(CITIES)
            # Wealth follows a long tail: most members are mass retail, a few are private banking.
            aum = rng.lognormvariate(11, 1.6)
            profiles.append((customer_no, aum, rng.random()))
            if customer_no in existing:
                continue
            batch.append(
                Member(
                    customer_no=customer_no,
                    name=rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2]))),
                    gender=rng.choice([Member.Gender.MALE, Member.Gender.FEMALE]),
                    birth_date=dt.date(
                        rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)
                    ),
                    phone=f"1{rng.choice('35789')}{rng.randint(0, 999999999):09d}",
                    email=f"{customer_no.lower()}@example.com",
                    occupation=rng.choice(OCCUPATIONS),
                    income_band=rng.choice(INCOME_BANDS),
                    city=city,
                    branch_code=f"{prefix}{rng.randint(1, 12):03d}",
                    credit_grade=rng.choice(["AAA", "AA", "A", "BBB", "BB"]),
                    risk_level=rng.choice(Member.RiskLevel.values),
                    marketing_consent=rng.random() < 0.8,
                    preferred_language=rng.choice(
                        [Member.Language.ZH_HANS] * 4 + [Member.Language.EN]
                    ),
                    joined_at=today - dt.timedelta(days=rng.randint(30, 3650)),
                )
            )
        with transaction.atomic():
            Member.objects.bulk_create(batch, batch_size=500)
            ids = dict(
                Member.objects.filter(customer_no__in=[p[0] for p in profiles]).values_list(
                    "customer_no", "id"
                )
            )
            have = set(
                AssetSnapshot.objects.filter(
                    member_id__in=ids.values(), as_of__in=as_of_dates
                ).values_list("member_id", "as_of")
            )
            snapshots = []
            for customer_no, aum, drift in tqdm(
                profiles, desc="Members", unit="member", disable=None
            ):
                member_id = ids[customer_no]
                for step, as_of in enumerate(as_of_dates):
                    if (member_id, as_of) in have:
                        continue
                    # A trend per member and a month's own ups and downs (its own seed, so
                    # the other demo data stays as it was).
                    wobble = random.Random(f"{seed}-{customer_no}-{step}").gauss(0, 0.04)
                    level = aum * (1 + (drift - 0.5) * 0.08 * step + wobble)
                    snapshots.append(
                        AssetSnapshot(
                            member_id=member_id,
                            as_of=as_of,
                            deposits=_money(level * 0.55),
                            wealth=_money(level * 0.25),
                            funds=_money(level * 0.12),
                            insurance=_money(level * 0.08),
                            loans=_money(level * 0.3 if drift > 0.7 else 0),
                            contribution=_money(level * 0.012),
                        )
                    )
            AssetSnapshot.objects.bulk_create(snapshots, batch_size=1000)
        self.stdout.write(
            f"Members: {len(batch)} created, {count - len(batch)} already there; "
            f"snapshots: {len(snapshots)} created for {', '.join(str(d) for d in as_of_dates)}."
        )
