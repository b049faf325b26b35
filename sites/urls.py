from django.urls import path

from sites import views

app_name = "sites"

urlpatterns = [
    path("sites/", views.site_list, name="site_list"),
    path("sites/new/", views.site_create, name="site_create"),
    path("sites/<int:pk>/", views.site_detail, name="site_detail"),
    path("sites/<int:pk>/edit/", views.site_edit, name="site_edit"),
    path("sites/<int:pk>/delete/", views.site_delete, name="site_delete"),
    path("meters/", views.meter_list, name="meter_list"),
    path("meters/new/", views.meter_create, name="meter_create"),
    path("meters/<int:pk>/", views.meter_detail, name="meter_detail"),
    path("meters/<int:pk>/edit/", views.meter_edit, name="meter_edit"),
    path("meters/<int:pk>/delete/", views.meter_delete, name="meter_delete"),
    path("meters/<int:pk>/sync/", views.meter_sync, name="meter_sync"),
    path("meters/<int:pk>/sync/card/", views.meter_sync_card, name="meter_sync_card"),
    path("devices/", views.device_list, name="device_list"),
    path("devices/new/", views.device_create, name="device_create"),
    path("devices/kind-fields/", views.device_kind_fields, name="device_kind_fields"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/edit/", views.device_edit, name="device_edit"),
    path("devices/<int:pk>/delete/", views.device_delete, name="device_delete"),
    path("devices/<int:pk>/sync/", views.device_sync, name="device_sync"),
    path("devices/<int:pk>/documents/", views.device_document_upload, name="device_document_upload"),
    path("devices/<int:pk>/sync/card/", views.device_sync_card, name="device_sync_card"),
]
