"""Error pages: under ``/admin/`` a 403 or 404 is a page in the console's own look (with its
navigation for a signed-in member of staff), everywhere else the API's problem details."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from loyalty.api import exceptions


def _in_console(request: HttpRequest) -> bool:
    return request.path_info.startswith("/admin/")


def _console_page(request: HttpRequest, *, status: int, title: str, detail: str) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": title,
        "detail": detail,
        "status": status,
    }
    response = TemplateResponse(request, "admin/error.html", context, status=status)
    return response.render()


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _in_console(request):
        return _console_page(
            request,
            status=403,
            title=str(_("Not allowed")),
            detail=str(_("Your role does not allow this page or action.")),
        )
    return exceptions.handler403(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _in_console(request):
        return _console_page(
            request,
            status=404,
            title=str(_("Page not found")),
            detail=str(_("There is no such page or record in the console.")),
        )
    return exceptions.handler404(request, exception)
