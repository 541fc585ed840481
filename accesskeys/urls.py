from __future__ import annotations

from django.urls import path

from accesskeys import views

app_name = "accesskeys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("create/", views.key_create, name="create"),
    path("<str:access_key_id>/revoke/", views.key_revoke, name="revoke"),
]
