from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The built-in sandbox gateway: a stand-in for a real provider that runs fully offline."""

    name = "payments.providers.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox gateway"
