"""Batch endpoints: ``{"<key>": [item, ...]}`` with per-item results.

The envelope must be right or nothing is stored (400, or 413 past the limit); within a right
envelope each item is validated alone, and the valid ones go on while each invalid one is
reported with its index and reasons.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from loyalty.api.exceptions import flatten_errors
from loyalty.errors import BatchTooLarge

BATCH_LIMIT = 1000


def batch_items(data: Any, *, key: str, limit: int = BATCH_LIMIT) -> list[Any]:
    """The list under ``key``, or a 400/413 problem when the envelope is wrong."""
    if not isinstance(data, dict) or key not in data:
        raise serializers.ValidationError(
            {key: [serializers.ErrorDetail(str(_("This field is required.")), code="required")]}
        )
    items = data[key]
    if not isinstance(items, list):
        raise serializers.ValidationError(
            {key: [serializers.ErrorDetail(str(_("Expected a list of items.")), code="not_a_list")]}
        )
    if not items:
        raise serializers.ValidationError(
            {key: [serializers.ErrorDetail(str(_("The batch is empty.")), code="empty")]}
        )
    if len(items) > limit:
        raise BatchTooLarge(limit=limit)
    return items


def batch_validate(
    items: list[Any], *, serializer_class: "type[BatchItemSerializer]", context: dict[str, Any]
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Validate each item alone: ``([(index, validated_data)], [{index, errors}])``."""
    valid: list[tuple[int, dict[str, Any]]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        serializer = serializer_class(data=item, context=context)
        if serializer.is_valid():
            valid.append((index, serializer.validated_data))
        else:
            rejected.append({"index": index, "errors": flatten_errors(serializer.errors_full())})
    return valid, rejected


class BatchItemSerializer(serializers.Serializer):
    """Base for batch items: ``errors_full`` keeps each error's code next to its message."""

    def errors_full(self) -> Any:
        return serializers.ValidationError(self.errors).get_full_details()


@extend_schema_serializer(component_name="FieldError")
class BatchErrorSerializer(serializers.Serializer):
    """One reason an item (or a request's field) was refused: the field (dotted when nested,
    ``null`` for the item or the request as a whole), a stable code and a translated message.
    A batch's ``rejected`` items and a problem's ``errors`` both hold these."""

    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    detail = serializers.CharField()


class BatchRejectionSerializer(serializers.Serializer):
    """An item of the batch that was not stored: its index in the request and why."""

    index = serializers.IntegerField()
    errors = BatchErrorSerializer(many=True)  # type: ignore[assignment]  # a field named like Serializer.errors
