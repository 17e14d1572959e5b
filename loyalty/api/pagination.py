"""List pagination, and a 400 problem naming the query parameter when it is wrong.

DRF answers a ``page`` that is no page number or a ``cursor`` it cannot read with 404 and
ignores a ``page_size`` it cannot read; here each answers 400 with its own code
(``invalid_page``, ``invalid_cursor``, ``invalid_page_size``) and ``errors[].field`` naming the
parameter. A page number past the last page is still 404 ``not_found``: that page does not exist.
"""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from loyalty.errors import LoyaltyError

MAX_PAGE_SIZE = 200
MAX_PAGE_NUMBER = 999_999_999
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class InvalidQueryParameter(LoyaltyError):
    """A pagination parameter the list cannot use: 400 with the parameter in ``errors``."""

    status = 400
    field = ""

    def __init__(self, detail=None) -> None:
        detail = detail if detail is not None else self.default_detail
        super().__init__(
            detail, errors=[{"field": self.field, "code": self.code, "detail": force_str(detail)}]
        )


class InvalidPage(InvalidQueryParameter):
    code = "invalid_page"
    field = "page"
    default_detail = _("The page must be a whole number from 1.")


class InvalidCursor(InvalidQueryParameter):
    code = "invalid_cursor"
    field = "cursor"
    default_detail = _("This cursor is not valid: follow a page's next or previous link.")


class InvalidPageSize(InvalidQueryParameter):
    code = "invalid_page_size"
    field = "page_size"
    default_detail = _("The page size must be a whole number from 1 to %(max)s.")

    def __init__(self, *, max_page_size: int) -> None:
        super().__init__(self.default_detail % {"max": max_page_size})


def _page_size(request, *, param: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(param)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise InvalidPageSize(max_page_size=maximum)
    return int(raw)


def _with_bounds(parameters: list[dict], bounds: dict[str, dict]) -> list[dict]:
    """The schema's paging parameters, carrying the bounds the server enforces."""
    for parameter in parameters:
        parameter["schema"].update(bounds.get(parameter["name"], {}))
    return parameters


class PageNumberPagination(pagination.PageNumberPagination):
    """``{count, next, previous, results}``; ``?page_size=`` from 1 to 200."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return _page_size(
            request,
            param=self.page_size_query_param,
            default=self.page_size,
            maximum=self.max_page_size,
        )

    def get_schema_operation_parameters(self, view):
        bounds = {
            self.page_query_param: {"minimum": 1, "maximum": MAX_PAGE_NUMBER},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        return _with_bounds(super().get_schema_operation_parameters(view), bounds)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None or raw in self.last_page_strings:
            return super().get_page_number(request, paginator)
        if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < 1:
            raise InvalidPage()
        return int(raw)


class CursorPagination(pagination.CursorPagination):
    """Stable pages over append-only histories (ledgers): ``{next, previous, results}``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"

    def get_page_size(self, request):
        return _page_size(
            request,
            param=self.page_size_query_param,
            default=self.page_size,
            maximum=self.max_page_size,
        )

    def get_schema_operation_parameters(self, view):
        bounds = {self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size}}
        return _with_bounds(super().get_schema_operation_parameters(view), bounds)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except (NotFound, UnicodeError, ValueError):  # not base64, not ASCII, bad tokens
            raise InvalidCursor() from None

    def paginate_queryset(self, queryset, request, view=None):
        if self.cursor_query_param not in request.query_params:
            return super().paginate_queryset(queryset, request, view)
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError):
            # A well-formed cursor whose position is no value of the ordering field.
            raise InvalidCursor() from None
