from django.urls import path

from members.api.segments import SegmentDetailApi, SegmentListCreateApi, SegmentPreviewApi
from members.api.tiers import (
    MeTierApi,
    TierEvaluateApi,
    TierEvaluationRunDetailApi,
    TierEvaluationRunListApi,
    TierListApi,
    TierOverrideApproveApi,
    TierOverrideDetailApi,
    TierOverrideListCreateApi,
    TierOverrideRejectApi,
    TierSimulateApi,
)
from members.api.views import (
    AssetSnapshotIngestApi,
    MeApi,
    MemberDetailApi,
    MemberListApi,
    MemberTokenApi,
    MeMessageListApi,
    MeMessageReadApi,
)

urlpatterns = [
    path("auth/member-token/", MemberTokenApi.as_view(), name="auth-member-token"),
    path("me/", MeApi.as_view(), name="me"),
    path("me/tier/", MeTierApi.as_view(), name="me-tier"),
    path("me/messages/", MeMessageListApi.as_view(), name="me-messages"),
    path("me/messages/<uuid:message_id>/read/", MeMessageReadApi.as_view(), name="me-message-read"),
    path("members/", MemberListApi.as_view(), name="member-list"),
    path("members/<str:customer_no>/", MemberDetailApi.as_view(), name="member-detail"),
    path(
        "ingest/asset-snapshots/", AssetSnapshotIngestApi.as_view(), name="ingest-asset-snapshots"
    ),
    path("segments/", SegmentListCreateApi.as_view(), name="segment-list"),
    path("segments/preview/", SegmentPreviewApi.as_view(), name="segment-preview"),
    path("segments/<uuid:segment_id>/", SegmentDetailApi.as_view(), name="segment-detail"),
    path("tiers/", TierListApi.as_view(), name="tier-list"),
    path("tiers/evaluate/", TierEvaluateApi.as_view(), name="tier-evaluate"),
    path("tiers/simulate/", TierSimulateApi.as_view(), name="tier-simulate"),
    path("tiers/runs/", TierEvaluationRunListApi.as_view(), name="tier-run-list"),
    path(
        "tiers/runs/<uuid:run_id>/",
        TierEvaluationRunDetailApi.as_view(),
        name="tier-run-detail",
    ),
    path("tiers/overrides/", TierOverrideListCreateApi.as_view(), name="tier-override-list"),
    path(
        "tiers/overrides/<uuid:override_id>/",
        TierOverrideDetailApi.as_view(),
        name="tier-override-detail",
    ),
    path(
        "tiers/overrides/<uuid:override_id>/approve/",
        TierOverrideApproveApi.as_view(),
        name="tier-override-approve",
    ),
    path(
        "tiers/overrides/<uuid:override_id>/reject/",
        TierOverrideRejectApi.as_view(),
        name="tier-override-reject",
    ),
]
