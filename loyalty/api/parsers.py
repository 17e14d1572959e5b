import codecs
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def request_body(request) -> Any:
    """The request's JSON body; a request with none at all answers 400 ``parse_error``. A write
    whose fields are all optional still takes ``{}``: a missing body is a client's mistake."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        raise ParseError(_("The request has no body: send a JSON object."))
    return request.data


class DecimalJSONParser(JSONParser):
    """JSON whose numbers with a fraction become ``Decimal``, never ``float``: money stays exact
    from the wire to the database. NaN and Infinity, unknown or non-text charsets and absurdly
    deep nesting are refused as 400 ``parse_error``."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            if not codecs.lookup(encoding)._is_text_encoding:
                raise LookupError(encoding)
        except LookupError:
            raise ParseError(_("Unsupported character set.")) from None
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            return json.loads(text, parse_float=Decimal, parse_constant=self._refuse_constant)
        except (ValueError, UnicodeDecodeError):
            raise ParseError(_("The request body is not valid JSON.")) from None
        except RecursionError:
            raise ParseError(_("The request body is nested too deeply.")) from None

    @staticmethod
    def _refuse_constant(name: str):
        raise ValueError(f"{name} is not valid JSON")
