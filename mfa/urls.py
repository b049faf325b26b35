from django.urls import path

from mfa import views

app_name = "mfa"

urlpatterns = [
    path("account/two-factor/", views.overview, name="overview"),
    path("account/two-factor/setup/", views.setup, name="setup"),
    path("account/two-factor/setup/qr.svg", views.setup_qr, name="setup_qr"),
    path("account/two-factor/verify/", views.verify, name="verify"),
    path("account/two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("account/two-factor/disable/", views.disable, name="disable"),
    path("organization/security/", views.organization_security, name="organization_security"),
]
