from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        from members.console import customer_rows_register, points_balances_register
        from members.signals import member_closure_final
        from points import selectors
        from points.api.sections import points_sections_register
        from points.services.ledger import member_closed_receiver

        # A closure that becomes final forfeits the balance inside that transaction.
        member_closure_final.connect(member_closed_receiver, dispatch_uid="points.forfeit_on_close")
        # The balance on /me/ and the points summary on the staff member detail.
        points_sections_register()
        # The ledger, lots, adjustments and balances in the console's customer view.
        customer_rows_register(name="entries", load=selectors.member_entries_newest)
        customer_rows_register(name="lots", load=selectors.member_lots_newest)
        customer_rows_register(name="adjustments", load=selectors.member_adjustments_newest)
        points_balances_register(
            balances=selectors.points_balances_of, total=selectors.points_balances_total
        )
