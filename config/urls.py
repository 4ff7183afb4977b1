from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.views import favicon, healthz, landing

handler500 = "core.views.server_error"

admin.site.site_header = "Tollgate finance"
admin.site.site_title = "Tollgate finance"
admin.site.index_title = "Back office"

api_v1 = [
    *include("payments.api.urls")[0].urlpatterns,
    *include("commissions.api.urls")[0].urlpatterns,
    *include("recurring.api.urls")[0].urlpatterns,
    *include("refunds.api.urls")[0].urlpatterns,
]

urlpatterns = [
    path("", landing, name="landing"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/", include("payments.webhooks.urls")),
    path("portal/", include("commissions.portal.urls")),
    path("documents/", include("invoicing.urls")),
    path("", include("payments.checkout.urls")),
]
if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("payments.providers.sandbox.urls")))
