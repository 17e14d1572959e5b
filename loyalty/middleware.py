"""The staff console shows and reads times in the bank's business time zone.

Guarantee: while a request under the admin (``/admin/``) is handled, Django's current time zone
is ``BUSINESS_TIME_ZONE`` (Asia/Shanghai), so every time the admin renders, filters by date or
takes from a form is business time; storage stays UTC, and the API, which answers ISO 8601
with an offset, keeps UTC. The previous time zone is restored after the response."""

from django.utils import timezone

from loyalty.timeutils import business_tz

ADMIN_PREFIX = "/admin/"


class ConsoleTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        with timezone.override(business_tz()):
            return self.get_response(request)
