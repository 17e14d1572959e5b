"""Text staff enter in both languages: a ``<prefix>_en`` and a ``<prefix>_zh_hans`` field.

Readers get the active language's text (the request's ``Accept-Language``, the member's language
for their messages), English when the Chinese one is empty.
"""

from django.db import models
from django.utils import translation


def translated(obj: models.Model, prefix: str) -> str:
    """The ``<prefix>_<language>`` field for the active language, English when it is empty."""
    language = (translation.get_language() or "en").lower().replace("-", "_")
    value = getattr(obj, f"{prefix}_{language}", "") if language.startswith("zh") else ""
    return value or getattr(obj, f"{prefix}_en")
