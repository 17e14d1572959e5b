"""Names for the serializers a view nests, as the OpenAPI schema shows them.

Every view nests its own ``InputSerializer`` and ``OutputSerializer``, so their class names
repeat across views; drf-spectacular would give them all the component ``Input``/``Output``
and warn about the collision. :func:`nested_components` names each one after its view instead
(``TierEvaluateApi.InputSerializer`` is ``TierEvaluateInput``). A nested name that only points
at a shared serializer (``OutputSerializer = AdjustmentOutputSerializer``) keeps the shared
one's own name.
"""

from typing import TypeVar

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

View = TypeVar("View", bound=type)


def nested_components(view: View) -> View:
    """Class decorator: name the serializers declared in ``view``'s body ``<View><Kind>``
    (``Api`` and a leading ``_`` dropped from the view's name, ``Serializer`` from the
    nested one's)."""
    prefix = view.__name__.lstrip("_").removesuffix("Api")
    for attribute, value in vars(view).items():
        if (
            isinstance(value, type)
            and issubclass(value, serializers.BaseSerializer)
            and value.__qualname__ == f"{view.__qualname__}.{attribute}"
        ):
            kind = attribute.removesuffix("Serializer")
            extend_schema_serializer(component_name=f"{prefix}{kind}")(value)
    return view
