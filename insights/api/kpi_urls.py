from django.urls import path

from insights.api.kpis import KpiApi

urlpatterns = [
    path("kpis/", KpiApi.as_view(), name="kpis"),
]
