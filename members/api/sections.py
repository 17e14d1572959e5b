"""Sections other apps add to ``/me/`` and to the staff member detail.

Members cannot import the apps built on it (points, rewards, events), yet ``/me/`` and
``/members/{customer_no}/`` show what those apps know about the member. Each such app registers
a section from its ``AppConfig.ready()``, as apps register their admin classes::

    me_section_register(
        name="points_balance",
        field=serializers.IntegerField(help_text=...),
        load=points_account_balance,
    )

A section is a field name, the serializer field (or serializer instance) that describes and
renders its value, and ``load(*, member)``, which reads the value for one member.

What holds:

- The answer is members' own fields, then each section's in registration order (the order of
  ``INSTALLED_APPS``), so adding an app only ever appends fields.
- The views compose their serializer once, after every app is ready, and the OpenAPI schema
  describes each section's field as fully as a declared one.
- A section cannot shadow another section or a members field, and a registration after the
  serializer was composed fails loudly instead of leaving a field silently missing.
- A section costs its loader's queries and nothing else: keep ``load`` to one query or two,
  since ``/me/`` is on every banking-app start.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from members.models import Member

SectionLoader = Callable[..., Any]
"""``load(*, member: Member) -> value``; ``None`` renders as ``null``."""


@dataclass(frozen=True)
class Section:
    name: str
    field: serializers.Field
    load: SectionLoader


class SectionRegistry:
    """The sections of one member view, composed into its output serializer."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._sections: dict[str, Section] = {}
        self._composed: type[serializers.Serializer] | None = None

    def register(self, *, name: str, field: serializers.Field, load: SectionLoader) -> None:
        if self._composed is not None:
            raise ImproperlyConfigured(
                f"Section {name!r} registered on {self.label} after its serializer was composed; "
                "register sections from AppConfig.ready()."
            )
        if name in self._sections:
            raise ImproperlyConfigured(f"{self.label} already has a section named {name!r}.")
        self._sections[name] = Section(name=name, field=field, load=load)

    def sections(self) -> list[Section]:
        return list(self._sections.values())

    def compose(self, base: type[serializers.Serializer]) -> type[serializers.Serializer]:
        """``base`` (members' own fields) with one read-only field per section after them.

        The composed class keeps ``base``'s name, so the schema component is named after it
        (``MeOutputSerializer`` is ``MeOutput``); ``base`` is never served alone.
        """
        if not apps.ready:
            raise ImproperlyConfigured(
                f"{self.label} composed before every app was ready: import the views from "
                "URLconfs only, not while apps load."
            )
        if self._composed is not None:
            return self._composed
        declared = set(base().fields)
        attrs: dict[str, Any] = {"__module__": base.__module__, "__doc__": base.__doc__}
        for section in self._sections.values():
            if section.name in declared:
                raise ImproperlyConfigured(
                    f"Section {section.name!r} would shadow a field of {self.label}."
                )
            attrs[section.name] = serializers.SerializerMethodField()
            attrs[f"get_{section.name}"] = _section_getter(section)
        meta = getattr(base, "Meta", None)
        if meta is not None and isinstance(getattr(meta, "fields", None), list | tuple):
            attrs["Meta"] = type("Meta", (meta,), {"fields": [*meta.fields, *self._sections]})
        self._composed = type(base.__name__, (base,), attrs)
        return self._composed


def _section_getter(section: Section) -> Callable[[serializers.Serializer, Member], Any]:
    @extend_schema_field(section.field)
    def get(serializer: serializers.Serializer, member: Member) -> Any:
        value = section.load(member=member)
        return None if value is None else section.field.to_representation(value)

    get.__name__ = f"get_{section.name}"
    return get


me_sections = SectionRegistry("/me/")
member_detail_sections = SectionRegistry("the staff member detail")


def me_section_register(*, name: str, field: serializers.Field, load: SectionLoader) -> None:
    """Add ``name`` to ``/me/``: ``field`` renders ``load(member=...)``."""
    me_sections.register(name=name, field=field, load=load)


def member_detail_section_register(
    *, name: str, field: serializers.Field, load: SectionLoader
) -> None:
    """Add ``name`` to the staff member detail (``GET`` and ``PUT`` of
    ``/members/{customer_no}/``): ``field`` renders ``load(member=...)``."""
    member_detail_sections.register(name=name, field=field, load=load)
