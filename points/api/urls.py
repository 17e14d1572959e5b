from django.urls import path

from points.api.views import (
    AdjustmentApproveApi,
    AdjustmentListCreateApi,
    AdjustmentRejectApi,
    MemberPointsEntryListApi,
    MePointsApi,
    MePointsEntryListApi,
    TransactionIngestApi,
)

urlpatterns = [
    path("ingest/transactions/", TransactionIngestApi.as_view(), name="ingest-transactions"),
    path("me/points/", MePointsApi.as_view(), name="me-points"),
    path("me/points/entries/", MePointsEntryListApi.as_view(), name="me-points-entries"),
    path(
        "members/<str:customer_no>/points/entries/",
        MemberPointsEntryListApi.as_view(),
        name="member-points-entries",
    ),
    path("points/adjustments/", AdjustmentListCreateApi.as_view(), name="points-adjustments"),
    path(
        "points/adjustments/<uuid:adjustment_id>/approve/",
        AdjustmentApproveApi.as_view(),
        name="points-adjustment-approve",
    ),
    path(
        "points/adjustments/<uuid:adjustment_id>/reject/",
        AdjustmentRejectApi.as_view(),
        name="points-adjustment-reject",
    ),
]
