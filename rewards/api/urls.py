from django.urls import path

from rewards.api.views import (
    MeRedemptionCancelApi,
    MeRedemptionDetailApi,
    MeRedemptionListCreateApi,
    RedemptionCancelApi,
    RedemptionCashPaymentApi,
    RedemptionFulfilApi,
    RedemptionListApi,
    RewardCodesAddApi,
    RewardDetailApi,
    RewardListCreateApi,
)

urlpatterns = [
    path("rewards/", RewardListCreateApi.as_view(), name="rewards"),
    path("rewards/<uuid:reward_id>/", RewardDetailApi.as_view(), name="reward"),
    path("rewards/<uuid:reward_id>/codes/", RewardCodesAddApi.as_view(), name="reward-codes"),
    path("me/redemptions/", MeRedemptionListCreateApi.as_view(), name="me-redemptions"),
    path(
        "me/redemptions/<uuid:redemption_id>/",
        MeRedemptionDetailApi.as_view(),
        name="me-redemption",
    ),
    path(
        "me/redemptions/<uuid:redemption_id>/cancel/",
        MeRedemptionCancelApi.as_view(),
        name="me-redemption-cancel",
    ),
    path("redemptions/", RedemptionListApi.as_view(), name="redemptions"),
    path(
        "redemptions/<uuid:redemption_id>/fulfil/",
        RedemptionFulfilApi.as_view(),
        name="redemption-fulfil",
    ),
    path(
        "redemptions/<uuid:redemption_id>/cancel/",
        RedemptionCancelApi.as_view(),
        name="redemption-cancel",
    ),
    path(
        "redemptions/<uuid:redemption_id>/cash-payment/",
        RedemptionCashPaymentApi.as_view(),
        name="redemption-cash-payment",
    ),
]
