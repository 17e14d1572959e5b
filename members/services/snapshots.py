"""Asset snapshots: the bank's figures per member and date, which tier evaluation reads.

A batch is stored in one transaction, with at most one row per member and date: a re-sent
snapshot replaces the stored amounts (``INSERT ... ON CONFLICT DO UPDATE``), never adds a second
row. Rows are locked and written in key order, so overlapping batches never deadlock.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from members.models import AssetSnapshot

SNAPSHOT_AMOUNTS = ("deposits", "wealth", "funds", "insurance", "loans", "contribution")


def asset_snapshots_store(*, snapshots: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated snapshots in one transaction: new ones are created, a re-sent one replaces
    the stored values for its member and date (never a second row).

    Each item has ``member_id``, ``as_of`` and the amounts of :data:`SNAPSHOT_AMOUNTS`.
    Returns counts: ``created``, ``updated`` (values changed), ``unchanged`` (identical re-send).
    """
    if not snapshots:
        return {"created": 0, "updated": 0, "unchanged": 0}
    keys = {(item["member_id"], item["as_of"]) for item in snapshots}
    member_ids = {member_id for member_id, _ in keys}
    dates = {as_of for _, as_of in keys}
    now = timezone.now()
    with transaction.atomic():
        # Rows are locked and written in key order, so overlapping batches never deadlock.
        existing = {
            (row["member_id"], row["as_of"]): row
            for row in AssetSnapshot.objects.select_for_update()
            .filter(member_id__in=member_ids, as_of__in=dates)
            .order_by("member_id", "as_of")
            .values("member_id", "as_of", *SNAPSHOT_AMOUNTS)
        }
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        rows = []
        for item in sorted(snapshots, key=lambda item: (item["member_id"], item["as_of"])):
            stored = existing.get((item["member_id"], item["as_of"]))
            amounts = {name: Decimal(item.get(name) or 0) for name in SNAPSHOT_AMOUNTS}
            if stored is None:
                counts["created"] += 1
            elif all(stored[name] == amounts[name] for name in SNAPSHOT_AMOUNTS):
                counts["unchanged"] += 1
                continue
            else:
                counts["updated"] += 1
            rows.append(
                AssetSnapshot(
                    member_id=item["member_id"], as_of=item["as_of"], updated_at=now, **amounts
                )
            )
        AssetSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["member", "as_of"],
            update_fields=[*SNAPSHOT_AMOUNTS, "updated_at"],
            batch_size=1000,
        )
    return counts
