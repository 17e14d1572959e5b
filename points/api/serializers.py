"""Output shapes that several points views (or a members section) answer with.

A shape one view alone uses is nested in that view; these are shared: a ledger entry (the
member's and the staff ledger), the points summary (``/me/points/`` and the staff member
detail's ``points`` section) and an adjustment (request, list, approve, reject).
"""

from functools import cached_property

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from points.descriptions import entry_description
from points.models import Adjustment, Campaign, Entry
from points.selectors import campaigns_by_code


class EntryOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    description = serializers.SerializerMethodField(
        help_text=_("In the caller's language: the rule and campaign that applied, the refund.")
    )
    expires_at = serializers.DateField(
        source="expires_on", read_only=True, allow_null=True, help_text=_("Last valid day.")
    )

    class Meta:
        model = Entry
        fields = [
            "id",
            "kind",
            "points",
            "balance_after",
            "description",
            "occurred_at",
            "expires_at",
        ]

    @cached_property
    def _campaigns(self) -> dict[str, Campaign]:
        # Once per response: a list shares this serializer between its entries.
        return campaigns_by_code()

    def get_description(self, entry: Entry) -> str:
        return entry_description(entry, campaigns=self._campaigns)


class PointsSummaryOutputSerializer(serializers.Serializer):
    # Renders a ``points.selectors.PointsBalance``.

    class ExpiringSerializer(serializers.Serializer):
        date = serializers.DateField()
        points = serializers.IntegerField()

    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    lifetime_earned = serializers.IntegerField()
    lifetime_redeemed = serializers.IntegerField()
    expiring = ExpiringSerializer(many=True)


class AdjustmentOutputSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="member.customer_no")
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    entry_id = serializers.UUIDField(source="entry.public_id", allow_null=True, default=None)

    class Meta:
        model = Adjustment
        fields = [
            "id",
            "customer_no",
            "points",
            "reason",
            "status",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "entry_id",
            "created_at",
        ]
