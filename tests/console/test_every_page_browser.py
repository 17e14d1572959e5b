"""Every page of the console, in a real browser on the demo data: a superuser visits the home
page, the list of every model the console shows, its add page and its latest record's page, in
English and in zh-hans. No page is wider than the 1,280 px window (nothing hidden behind a
horizontal scroll), and in zh-hans no label (headings, column titles, filters, buttons,
navigation, help texts) is left in English on the home page, the lists and the add pages. A
record's page shows its data (names, comments, codes), which is not a label: the tests of the
data shown translated (schedules, roles, audit rows, inbox reasons) cover those. Data cells are
left out of the lists, as are a few terms a Chinese bank uses as they are."""

import re

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import RequestFactory

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Terms used untranslated in a Chinese bank's back office, and the theme's shortcut keys.
KEPT = {
    "CSV", "Excel", "NPS", "AUM", "MCC", "API", "URL", "JSON", "Celery", "KPI", "KPIs", "QR",
    "CNY", "ATM", "POS", "UTC",
}  # fmt: skip

# Every text node of the page that is a label: not inside a data cell, a field's value, code,
# or anything hidden from sight.
LABELS_JS = """
() => {
  const skip = "td, tbody th, pre, code, script, style, textarea, option, .readonly, [hidden], "
    + "template, .material-symbols-outlined";  // icons: "chevron_right" draws an arrow
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
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def english_words(texts: list[str], *, username: str) -> set[str]:
    """The English words of the labels that have no Chinese in them (a translated sentence may
    name a setting or a value as it is: "在 CELERY_TASK_QUEUES 定义的队列")."""
    kept = KEPT | {username, username.capitalize()}
    return {
        word
        for text in texts
        if not CHINESE.search(text)
        for word in ENGLISH.findall(text)
        if word not in kept
    }


def console_pages(user) -> list[str]:
    """The home page, and per model its list, its add page (where there is one) and the page
    of its latest record."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = ["/admin/"]
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages.append(base)
        if model_admin.has_add_permission(request):
            pages.append(f"{base}add/")
        latest = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        if latest is not None:
            pages.append(f"{base}{latest}/change/")
    return pages


def test_every_page_fits_the_window_and_is_translated(console):
    call_command("seed_demo", members=150, months=4, force=True, verbosity=0)
    superuser = UserFactory(username="root", is_superuser=True)
    pages = console_pages(superuser)
    too_wide, untranslated = {}, {}
    for language in ("en", "zh-hans"):
        page = console(superuser, language=language)
        for path in pages:
            response = page.goto(f"{page.base}{path}")
            assert response is not None
            assert response.status == 200, (language, path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 1280:
                too_wide[(language, path)] = width
            if language == "zh-hans" and not path.endswith("/change/"):
                words = english_words(page.evaluate(LABELS_JS), username=superuser.username)
                if words:
                    untranslated[path] = sorted(words)
        page.goto(f"{page.base}/admin/")
        page.shot(f"home-{language}")
    assert too_wide == {}, "\n".join(f"{key}: {width} px" for key, width in too_wide.items())
    assert untranslated == {}, "\n".join(f"{path}: {words}" for path, words in untranslated.items())
