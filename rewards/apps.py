from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        from members.console import customer_rows_register
        from rewards.selectors import member_redemptions_newest

        # The member's redemptions in the console's customer view.
        customer_rows_register(name="redemptions", load=member_redemptions_newest)
