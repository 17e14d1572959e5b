"""The console in zh-hans, in a real browser: a superuser visits the home page and the list of
every model the console shows, and no label on them (headings, column titles, filters, buttons,
navigation) is left in English. Data cells are not labels and are left out, as are a few terms
a Chinese bank uses as they are."""

import re

import pytest
from django.contrib import admin

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Terms used untranslated in a Chinese bank's back office, and the theme's shortcut keys.
KEPT = {"CSV", "Excel", "NPS", "AUM", "MCC", "API", "URL", "JSON", "Celery", "KPI", "KPIs", "QR"}

# Every text node of the page that is a label: not inside a data cell, a field's value, code,
# or anything hidden from sight.
LABELS_JS = """
() => {
  const skip = "td, tbody th, pre, code, script, style, textarea, option, .readonly, [hidden], template, "
    + ".material-symbols-outlined";  // icons are ligatures: "chevron_right" draws an arrow
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest(skip)) continue;
    if (!parent.offsetParent && getComputedStyle(parent).position !== "fixed") continue;
    found.push(text);
  }
  for (const element of document.querySelectorAll("input[placeholder]")) {
    if (element.offsetParent) found.push(element.placeholder);
  }
  return found;
}
"""
ENGLISH = re.compile(r"[A-Za-z]{3,}")


def english_words(texts: list[str], *, username: str) -> set[str]:
    kept = KEPT | {username}
    return {word for text in texts for word in ENGLISH.findall(text) if word not in kept}


def test_no_console_label_is_left_in_english(console):
    superuser = UserFactory(username="root", is_superuser=True)
    page = console(superuser, language="zh-hans")
    pages = ["/admin/"] + sorted(
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
    )
    untranslated = {}
    for path in pages:
        page.goto(f"{page.base}{path}")
        words = english_words(page.evaluate(LABELS_JS), username=superuser.username)
        if words:
            untranslated[path] = sorted(words)
    page.goto(f"{page.base}/admin/")
    page.shot("home-zh-hans")
    assert untranslated == {}, "\n".join(f"{path}: {words}" for path, words in untranslated.items())
