"""The tenant admins' dashboard, at /dashboard/ on each tenant's host."""

from django.urls import include, path

from dashboard.views import auth, overview, widget

app_name = "dashboard"

urlpatterns = [
    path("login", auth.LoginView.as_view(), name="login"),
    path("logout", auth.LogoutView.as_view(), name="logout"),
    path("", overview.overview, name="overview"),
    path("widget/", widget.widget, name="widget"),
    path("widget/preview-token", widget.preview_token, name="widget-preview-token"),
    path("widget/preview-send", widget.preview_send, name="widget-preview-send"),
    # Sends, end users, notification types and templates.
    path("", include("dashboard.urls_content")),
    # Password reset, API keys, widget set-up, settings.
    path("", include("dashboard.urls_account")),
]
