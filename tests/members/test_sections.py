"""Sections: an app adds its fields to /me/ and to the staff member detail by registering them,
and the registry refuses what would leave a field shadowed or silently missing."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from members.api.sections import SectionRegistry, me_sections
from members.api.serializers import MeOutputSerializer
from tests.factories import MemberFactory
from tests.members.tier_helpers import evaluate, ladder, snapshots

pytestmark = pytest.mark.django_db


def test_points_section_follows_members_fields_on_me(member_client):
    body = member_client().get("/api/v1/me/").json()
    assert list(body) == [*MeOutputSerializer.Meta.fields, "points_balance"]
    assert body["points_balance"] == 0


def test_me_costs_one_query_per_section(member_client, django_assert_num_queries):
    ladder()
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    client = member_client(member)
    # The token's member, the tier state, the points balance.
    with django_assert_num_queries(3):
        assert client.get("/api/v1/me/").status_code == 200


def test_schema_describes_registered_sections(admin_api):
    schemas = admin_api.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schemas["MeOutput"]["properties"]["points_balance"]["type"] == "integer"
    assert schemas["MemberDetailOutput"]["properties"]["points"] == {
        "allOf": [{"$ref": "#/components/schemas/PointsSummaryOutput"}],
        "readOnly": True,
    }


def test_a_section_registered_after_composition_is_refused():
    import members.api.views  # noqa: F401 - composes /me/, as the URLconf does

    with pytest.raises(ImproperlyConfigured, match="after its serializer was composed"):
        me_sections.register(
            name="late", field=serializers.IntegerField(), load=lambda *, member: 0
        )


def test_a_section_cannot_take_a_name_twice_or_shadow_a_members_field():
    registry = SectionRegistry("a test view")
    registry.register(name="tier", field=serializers.IntegerField(), load=lambda *, member: 0)
    with pytest.raises(ImproperlyConfigured, match="already has"):
        registry.register(name="tier", field=serializers.IntegerField(), load=lambda *, member: 0)
    with pytest.raises(ImproperlyConfigured, match="shadow"):
        registry.compose(MeOutputSerializer)
