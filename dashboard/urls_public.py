"""Dashboard pages on the platform host: self-serve sign-up."""

from django.urls import path

from dashboard.views import signup

urlpatterns = [
    path("", signup.landing, name="landing"),
    path("signup", signup.signup, name="signup"),
    path("signup/done", signup.signup_done, name="signup-done"),
]
