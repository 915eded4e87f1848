"""Account pages of the dashboard (tenant hosts): first sign-in after sign-up, password reset,
API keys, webhooks, settings and the usage report."""

from django.urls import path

from dashboard.views import api_keys, password, settings, signup, webhooks

urlpatterns = [
    path("welcome", signup.welcome, name="welcome"),
    path("password-reset", password.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent", password.PasswordResetDoneView.as_view(), name="password-reset-done"
    ),
    path(
        "reset/<uidb64>/<token>",
        password.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "reset/done", password.PasswordResetCompleteView.as_view(), name="password-reset-complete"
    ),
    path("api-keys/", api_keys.api_keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke", api_keys.api_key_revoke_view, name="api-key-revoke"),
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/<int:endpoint_id>", webhooks.webhook_detail, name="webhook"),
    path("webhooks/<int:endpoint_id>/enabled", webhooks.webhook_enabled, name="webhook-enabled"),
    path(
        "webhooks/<int:endpoint_id>/rotate-secret",
        webhooks.webhook_rotate_secret,
        name="webhook-rotate-secret",
    ),
    path("webhooks/<int:endpoint_id>/test", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/delete", webhooks.webhook_delete, name="webhook-delete"),
    path(
        "webhooks/deliveries/<int:delivery_id>/retry",
        webhooks.webhook_delivery_retry_view,
        name="webhook-delivery-retry",
    ),
    path("settings/", settings.settings_page, name="settings"),
    path("usage", settings.usage_page, name="usage"),
]
