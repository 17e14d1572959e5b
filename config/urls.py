from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from loyalty.health import healthz, readyz

api_v1 = [
    path("", include("loyalty.api.urls")),
    path("", include("members.api.urls")),
    path("", include("points.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "loyalty.api.exceptions.handler400"
handler403 = "loyalty.api.exceptions.handler403"
handler404 = "loyalty.api.exceptions.handler404"
handler500 = "loyalty.api.exceptions.handler500"
