from django.urls import path

from members.api.views import (
    AssetSnapshotIngestApi,
    MeApi,
    MemberDetailApi,
    MemberListApi,
    MemberTokenApi,
)

urlpatterns = [
    path("auth/member-token/", MemberTokenApi.as_view(), name="auth-member-token"),
    path("me/", MeApi.as_view(), name="me"),
    path("members/", MemberListApi.as_view(), name="member-list"),
    path("members/<str:customer_no>/", MemberDetailApi.as_view(), name="member-detail"),
    path(
        "ingest/asset-snapshots/", AssetSnapshotIngestApi.as_view(), name="ingest-asset-snapshots"
    ),
]
