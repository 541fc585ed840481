from __future__ import annotations

from django.urls import path

from executions import views

app_name = "executions"
urlpatterns = [
    path("", views.home, name="home"),
]
