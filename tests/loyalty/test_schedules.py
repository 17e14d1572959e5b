"""Every Celery beat schedule the migrations create has its name and description in the
console's translated list, so the schedule pages read in the reader's language."""

import pytest
from django.utils import translation
from django_celery_beat.models import PeriodicTask

from loyalty.schedules import SCHEDULE_TEXTS, schedule_text

pytestmark = pytest.mark.django_db


def test_every_migrated_schedule_is_translated():
    texts = {text for task in PeriodicTask.objects.all() for text in (task.name, task.description)}
    texts.discard("")
    assert texts
    assert texts <= set(SCHEDULE_TEXTS)
    with translation.override("zh-hans"):
        assert [text for text in sorted(texts) if schedule_text(text) == text] == []


def test_a_text_that_is_not_a_schedule_s_is_shown_as_written():
    with translation.override("zh-hans"):
        assert schedule_text("Save") == "Save"
