from django.urls import path

from notifications import apis, push_apis

urlpatterns = [
    path("users/<str:external_id>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("users/<str:external_id>/token", apis.UserTokenApi.as_view(), name="user-token"),
    path("notifications", apis.NotificationsApi.as_view(), name="notifications"),
    path("sends/<int:send_id>", apis.SendDetailApi.as_view(), name="send-detail"),
    path("deliveries", apis.DeliveriesApi.as_view(), name="deliveries"),
    path("types", apis.TypesApi.as_view(), name="types"),
    path("types/<str:key>", apis.TypeDetailApi.as_view(), name="type-detail"),
    path("me/notifications", apis.MeNotificationsApi.as_view(), name="me-notifications"),
    path(
        "me/notifications/unread_count",
        apis.MeUnreadCountApi.as_view(),
        name="me-notifications-unread-count",
    ),
    path(
        "me/notifications/read_all", apis.MeReadAllApi.as_view(), name="me-notifications-read-all"
    ),
    path(
        "me/notifications/<int:notification_id>",
        apis.MeNotificationDetailApi.as_view(),
        name="me-notification-detail",
    ),
    path("me/preferences", apis.MePreferencesApi.as_view(), name="me-preferences"),
    path("me/widget", apis.MeWidgetApi.as_view(), name="me-widget"),
    path(
        "me/push-subscriptions",
        push_apis.MePushSubscriptionsApi.as_view(),
        name="me-push-subscriptions",
    ),
    path(
        "me/push-subscriptions/<int:subscription_id>",
        push_apis.MePushSubscriptionDetailApi.as_view(),
        name="me-push-subscription-detail",
    ),
    path("push/public-key", push_apis.PushPublicKeyApi.as_view(), name="push-public-key"),
]
