from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Events")

    def ready(self) -> None:
        from events.selectors import member_invitations_newest
        from members.console import customer_rows_register

        # The member's invitations in the console's customer view.
        customer_rows_register(name="invitations", load=member_invitations_newest)
