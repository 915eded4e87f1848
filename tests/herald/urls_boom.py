"""Test-only URLs: the real ones plus endpoints that fail on purpose."""

from django.urls import path
from rest_framework.views import APIView

from herald.urls import handler404, handler500
from herald.urls import urlpatterns as real_urlpatterns


class BoomApi(APIView):
    def get(self, request):
        raise RuntimeError("boom: an unexpected bug")


class EchoApi(APIView):
    def post(self, request):
        from rest_framework import serializers

        class Echo(serializers.Serializer):
            count = serializers.IntegerField(min_value=1)
            items = serializers.ListField(child=serializers.CharField(), max_length=2)

        serializer = Echo(data=request.data)
        serializer.is_valid(raise_exception=True)
        return None


urlpatterns = [
    path("api/v1/_boom", BoomApi.as_view()),
    path("api/v1/_echo", EchoApi.as_view()),
    *real_urlpatterns,
]

__all__ = ["handler404", "handler500", "urlpatterns"]
