"""The member's recommendations: what the nightly run ranked for them, as it still holds now."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers

from insights.categories import mcc_name
from insights.models import Recommendation
from insights.services.recommendations import RecommendedItem, member_recommendations
from loyalty.api.permissions import IsMember
from loyalty.api.schema import nested_components


def reason_text(reason: str, data: dict[str, Any]) -> str:
    """``reason`` (a :class:`~insights.models.Recommendation.Reason` code) in words in the
    active language, filled from ``data`` (a spending category by its readable name)."""
    # A code the model does not know is a defect of the job that wrote it: it fails loudly.
    label = Recommendation.Reason(reason).label
    return str(label) % {"category": mcc_name(str(data.get("category", "")))}


class RecommendationOutputSerializer(serializers.Serializer):
    """A reward or an event recommended to me, best first. ``id`` is the reward's (redeem it
    at ``/me/redemptions/``) or the event's (answer its invitation at ``/me/invitations/``),
    ``title`` its name in my language, ``score`` how strongly it is recommended (a decimal
    string, higher first) and ``reason`` why, in words."""

    type = serializers.ChoiceField(choices=Recommendation.ItemType.choices, source="item_type")
    id = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField()
    score = serializers.DecimalField(max_digits=12, decimal_places=4)
    reason = serializers.SerializerMethodField()

    @extend_schema_field(serializers.UUIDField())
    def get_id(self, item: RecommendedItem) -> str:
        return str(
            item.reward_id if item.item_type == Recommendation.ItemType.REWARD else item.event_id
        )

    def get_title(self, item: RecommendedItem) -> str:
        if item.item_type == Recommendation.ItemType.REWARD:
            return item.reward.name if item.reward else ""
        return item.event.title if item.event else ""

    def get_reason(self, item: RecommendedItem) -> str:
        return reason_text(item.reason, item.reason_data or {})


@extend_schema(tags=["me"])
@nested_components
class MeRecommendationListApi(generics.ListAPIView):
    """Rewards and events recommended to me, best first (at most ten, from the nightly run),
    each with why. Only what I can still take now: a reward I may redeem (in stock, within my
    tier and points), an event whose invitation I hold and may still answer."""

    permission_classes = [IsMember]
    OutputSerializer = RecommendationOutputSerializer
    serializer_class = OutputSerializer
    queryset = Recommendation.objects.none()  # the model, for the schema; items: the reader
    filter_backends: list = []

    def get_queryset(self):
        # A list of the member's stored items still valid now, paginated as it is.
        return member_recommendations(member=self.request.user.member)
