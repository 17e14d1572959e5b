"""What points adds to the members views: the balance on ``/me/`` and the points summary on
the staff member detail. Registered from ``PointsConfig.ready()``.

``/me/`` gains one query (the account's balance); the detail gains the summary's.
"""

from rest_framework import serializers

from members.api.sections import me_section_register, member_detail_section_register
from points.api.serializers import PointsSummaryOutputSerializer
from points.selectors import points_account_balance, points_balance_get


def points_sections_register() -> None:
    me_section_register(
        name="points_balance",
        field=serializers.IntegerField(),
        load=points_account_balance,
    )
    member_detail_section_register(
        name="points",
        field=PointsSummaryOutputSerializer(),
        load=points_balance_get,
    )
