from axes import apps as axes_apps
from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    default = True  # the app's own config; AxesConfig below is django-axes'
    name = "loyalty"
    verbose_name = _("Loyalty programme")

    def ready(self) -> None:
        import loyalty.lookups
        import loyalty.observability
        import loyalty.schema  # noqa: F401 - registers the OpenAPI authentication scheme
        from loyalty.checks import deploy_checks_register
        from loyalty.roles import roles_sync_after_migrate

        deploy_checks_register()

        # Permissions are created after migrations run, so the roles are completed then too.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="loyalty.roles_sync")


class AxesConfig(axes_apps.AppConfig):
    """django-axes (sign-in lockouts) under a name staff read in their language."""

    verbose_name = _("Sign-in protection")
