from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = _("Insights")

    def ready(self) -> None:
        # The metrics' Celery signals (a worker's counters) and the database collector.
        import insights.metrics  # noqa: F401
