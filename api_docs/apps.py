from django.apps import AppConfig


class ApiDocsConfig(AppConfig):
    name = "api_docs"
    verbose_name = "API documentation"

    def ready(self) -> None:
        from api_docs import schema  # noqa: F401 -- importing registers the schema extensions
