from __future__ import annotations

from django.urls import path

from lab import views

app_name = "lab"
urlpatterns = [
    path("", views.home, name="home"),
    path("compare/", views.comparison_new, name="compare"),
    path("comparisons/<int:pk>/", views.comparison_detail, name="comparison"),
    path("comparisons/<int:pk>/run-again/", views.comparison_rerun, name="comparison_rerun"),
    path("diff/", views.execution_diff, name="diff"),
    path("demos/<slug:slug>/", views.demo_detail, name="demo"),
    path("demos/<slug:slug>/run/", views.demo_run, name="demo_run"),
    path("dlq/", views.dead_letter_queue, name="dlq"),
    path("dlq/<int:pk>/", views.dead_letter_detail, name="dlq_detail"),
    path("dlq/<int:pk>/redrive/", views.dead_letter_redrive, name="dlq_redrive"),
]
