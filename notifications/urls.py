from django.urls import path

from notifications import apis, push_apis, topic_apis, webhook_apis

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
    path("webhook-endpoints", webhook_apis.WebhookEndpointsApi.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<int:endpoint_id>",
        webhook_apis.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/rotate-secret",
        webhook_apis.WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/test",
        webhook_apis.WebhookEndpointTestApi.as_view(),
        name="webhook-endpoint-test",
    ),
    path(
        "webhook-deliveries",
        webhook_apis.WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>",
        webhook_apis.WebhookDeliveryDetailApi.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>/retry",
        webhook_apis.WebhookDeliveryRetryApi.as_view(),
        name="webhook-delivery-retry",
    ),
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
    path("topics", topic_apis.TopicsApi.as_view(), name="topics"),
    path("topics/<str:key>", topic_apis.TopicDetailApi.as_view(), name="topic-detail"),
    path(
        "topics/<str:key>/subscribers",
        topic_apis.TopicSubscribersApi.as_view(),
        name="topic-subscribers",
    ),
    path(
        "topics/<str:key>/subscribers/<str:external_id>",
        topic_apis.TopicSubscriberDetailApi.as_view(),
        name="topic-subscriber-detail",
    ),
    path("me/topics", topic_apis.MeTopicsApi.as_view(), name="me-topics"),
]
