from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        from members.signals import member_closure_final
        from points.api.sections import points_sections_register
        from points.services.ledger import member_closed_receiver

        # A closure that becomes final forfeits the balance inside that transaction.
        member_closure_final.connect(member_closed_receiver, dispatch_uid="points.forfeit_on_close")
        # The balance on /me/ and the points summary on the staff member detail.
        points_sections_register()
