"""Text staff enter in both languages: a ``<prefix>_en`` and a ``<prefix>_zh_hans`` field.

Readers get the active language's text (the request's ``Accept-Language``, the member's language
for their messages), English when the Chinese one is empty.
"""

from django.db import models
from django.utils import translation


def translated(obj: models.Model, prefix: str) -> str:
    """The ``<prefix>_<language>`` field for the active language, English when it is empty."""
    return translated_text(
        en=getattr(obj, f"{prefix}_en"), zh_hans=getattr(obj, f"{prefix}_zh_hans", "")
    )


def translated_text(*, en: str, zh_hans: str) -> str:
    """``zh_hans`` when the active language is Chinese and it is not empty, else ``en``."""
    language = (translation.get_language() or "en").lower()
    return (zh_hans if language.startswith("zh") else "") or en
