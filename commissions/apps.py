from django.apps import AppConfig


class CommissionsConfig(AppConfig):
    name = "commissions"
    verbose_name = "Payees and commissions"

    def ready(self) -> None:
        # Celery's autodiscovery imports `commissions.tasks` only; the statement tasks live in their package.
        from commissions.statements import tasks  # noqa: F401
