"""Account pages of the dashboard (tenant hosts): first sign-in after sign-up, password reset,
API keys, settings and the usage report."""

from django.urls import path

from dashboard.views import api_keys, password, settings, signup

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
    path("settings/", settings.settings_page, name="settings"),
    path("usage", settings.usage_page, name="usage"),
]
