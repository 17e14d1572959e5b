"""Everything people read exists in Simplified Chinese: the catalogue has no gaps or guesses."""

import re
from pathlib import Path

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _entries() -> list[str]:
    return [block for block in PO.read_text(encoding="utf-8").split("\n\n") if "msgid" in block]


def _joined(block: str, keyword: str) -> str:
    match = re.search(rf'^{re.escape(keyword)} ((?:".*"\n?)+)', block + "\n", re.M)
    return "".join(re.findall(r'"(.*)"', match.group(1))) if match else ""


def _translation(block: str) -> str:
    """The entry's msgstr, or its only plural form (Chinese has one)."""
    return _joined(block, "msgstr") or _joined(block, "msgstr[0]")


def test_every_message_has_a_chinese_translation_and_none_is_fuzzy():
    untranslated = [
        _joined(block, "msgid")
        for block in _entries()
        if _joined(block, "msgid") and not _translation(block)
    ]
    fuzzy = [_joined(block, "msgid") for block in _entries() if "#, fuzzy" in block]
    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalogue_says_what_the_source_says():
    """A translation edited in the .po but not compiled would never reach anyone."""
    import gettext

    with PO.with_suffix(".mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)

    def compiled_text(block: str) -> str:
        msgid, context = _joined(block, "msgid"), _joined(block, "msgctxt")
        if plural := _joined(block, "msgid_plural"):
            return catalogue.ngettext(msgid, plural, 1)
        return catalogue.pgettext(context, msgid) if context else catalogue.gettext(msgid)

    blocks = [block for block in _entries() if _joined(block, "msgid") and "\\" not in block]
    assert len(blocks) > 300
    stale = [
        _joined(block, "msgid") for block in blocks if compiled_text(block) != _translation(block)
    ]
    assert stale == []
