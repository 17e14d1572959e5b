from django.urls import path

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
    path("me/messages/", MeMessageListApi.as_view(), name="me-messages"),
    path("me/messages/<uuid:message_id>/read/", MeMessageReadApi.as_view(), name="me-message-read"),
    path("members/", MemberListApi.as_view(), name="member-list"),
    path("members/<str:customer_no>/", MemberDetailApi.as_view(), name="member-detail"),
    path(
        "ingest/asset-snapshots/", AssetSnapshotIngestApi.as_view(), name="ingest-asset-snapshots"
    ),
]
