from django.urls import path

from api import web

app_name = "api_keys"

urlpatterns = [
    path("organization/api-keys/", web.api_keys, name="list"),
    path("organization/api-keys/<str:prefix>/revoke/", web.api_key_revoke_view, name="revoke"),
]
