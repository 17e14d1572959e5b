"""Demo segments for ``seed_demo``: the target groups a bank's marketing team starts with,
named in English and Simplified Chinese, saved (and counted) through the service. Idempotent:
a segment that exists by its English name is left as staff edited it."""

from typing import Any, TextIO

from members.models import Segment
from members.services.segments import segment_create

SEGMENTS: list[dict[str, Any]] = [
    {
        "name_en": "High-net-worth savers",
        "name_zh_hans": "高净值储蓄客户",
        "description_en": "AUM of CNY 500,000 or more, holding deposits.",
        "description_zh_hans": "资产规模 50 万元及以上且持有存款。",
        "rule": {"aum_min": "500000.00", "holds": ["deposits"]},
    },
    {
        "name_en": "Young professionals",
        "name_zh_hans": "年轻专业人士",
        "description_en": "Aged 25 to 35.",
        "description_zh_hans": "25 至 35 岁。",
        "rule": {"age_min": 25, "age_max": 35},
    },
    {
        "name_en": "Fund holders in Shanghai",
        "name_zh_hans": "上海基金持有客户",
        "description_en": "Shanghai customers who hold funds.",
        "description_zh_hans": "持有基金的上海客户。",
        "rule": {"cities": ["Shanghai"], "holds": ["funds"]},
    },
    {
        "name_en": "Dormant customers",
        "name_zh_hans": "沉睡客户",
        "description_en": "No transaction in 90 days.",
        "description_zh_hans": "90 天内无交易。",
        "rule": {"inactive_days_min": 90},
    },
    {
        "name_en": "Wealth customers at risk",
        "name_zh_hans": "有流失风险的财富客户",
        "description_en": "AUM of CNY 100,000 or more, flagged as a churn risk.",
        "description_zh_hans": "资产规模 10 万元及以上且有流失风险。",
        "rule": {"aum_min": "100000.00", "churn_risk": True},
    },
]


def seed_segments(*, stdout: TextIO | None = None) -> dict[str, int]:
    created = 0
    for spec in SEGMENTS:
        if Segment.objects.filter(name_en=spec["name_en"]).exists():
            continue
        segment_create(actor=None, **spec)
        created += 1
    if stdout is not None:
        counts = ", ".join(
            f"{s.name_en} {s.member_count}" for s in Segment.objects.order_by("name_en")
        )
        stdout.write(f"Segments: {created} created ({counts}).")
    return {"segments": created}
