import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User

from members.models import AssetSnapshot, Member


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    customer_no = factory.Sequence(lambda n: f"C{n:08d}")
    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    email = factory.LazyAttribute(lambda m: f"{m.customer_no.lower()}@example.com")
    city = "Shanghai"
    branch_code = "SH001"
    marketing_consent = True
    joined_at = dt.date(2024, 1, 15)


class AssetSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetSnapshot

    member = factory.SubFactory(MemberFactory)
    as_of = dt.date(2026, 10, 31)
    deposits = Decimal("50000.00")
    wealth = Decimal("0.00")
    funds = Decimal("0.00")
    insurance = Decimal("0.00")
    loans = Decimal("0.00")
    contribution = Decimal("1000.00")
