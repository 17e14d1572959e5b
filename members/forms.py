"""Form fields other apps' console pages share for member attributes."""

from django import forms
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from members.models import Tier


def _tier_choices() -> list[tuple[str, str]]:
    return [(tier.code, tier.name) for tier in Tier.objects.order_by("rank")]


class TierCodesField(forms.MultipleChoiceField):
    """Tier codes ticked on the ladder's tiers (read when the form is shown), for a JSON list
    of codes such as an event's or a campaign's target tiers; none ticked means every tier."""

    widget = UnfoldAdminCheckboxSelectMultipleWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Target tiers"))
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", _("None chosen: every tier."))
        super().__init__(choices=_tier_choices, **kwargs)
