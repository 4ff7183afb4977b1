from django.conf import settings


def tollgate(request):
    return {"platform_name": settings.TOLLGATE_PLATFORM_NAME, "sandbox_enabled": settings.SANDBOX_ENABLED}
