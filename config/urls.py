from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from insights.metrics import metrics_view
from loyalty.api.exceptions import api_not_found
from loyalty.health import healthz, readyz

api_v1 = [
    path("", include("loyalty.api.urls")),
    path("", include("members.api.urls")),
    path("", include("points.api.urls")),
    path("", include("rewards.api.urls")),
    path("", include("events.api.urls")),
    path("", include("insights.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Last: every other path under /api/ is a 404 problem, DEBUG or not (see api_not_found).
    re_path(r"^api/", api_not_found, name="api-not-found"),
]

if settings.DEBUG:
    urlpatterns[-1:-1] = static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

handler400 = "loyalty.api.exceptions.handler400"
handler403 = "loyalty.errorpages.handler403"
handler404 = "loyalty.errorpages.handler404"
handler500 = "loyalty.api.exceptions.handler500"
