from __future__ import annotations

from django.urls import path

from executions import link_views, views

app_name = "executions"
urlpatterns = [
    path("", views.home, name="home"),
    path("executions/", views.execution_list, name="list"),
    path("executions/start/", views.execution_start, name="start"),
    path("executions/<int:pk>/", views.execution_detail, name="detail"),
    path("executions/<int:pk>/section/<slug:section>/", views.execution_section, name="section"),
    path("executions/<int:pk>/timeline.json", views.timeline_data, name="timeline_data"),
    path("executions/<int:pk>/ops/<str:op_id>/", views.operation_detail, name="operation"),
    path("executions/<int:pk>/history/", views.history, name="history"),
    path("executions/<int:pk>/history.json", views.history_export, name="history_export"),
    path("executions/<int:pk>/stop/", views.execution_stop, name="stop"),
    path("executions/<int:pk>/pause/", views.execution_pause, name="pause"),
    path("executions/<int:pk>/resume/", views.execution_resume, name="resume"),
    path("executions/<int:pk>/delete/", views.execution_delete, name="delete"),
    path("executions/<int:pk>/kill/", views.execution_kill, name="kill"),
    path("executions/<int:pk>/arm-fault/", views.execution_arm_fault, name="arm_fault"),
    path(
        "executions/<int:pk>/release-quarantine/",
        views.execution_release_quarantine,
        name="release_quarantine",
    ),
    path("executions/<int:pk>/run-again/", views.execution_rerun, name="rerun"),
    path("callbacks/", views.callback_inbox, name="callbacks"),
    path("callbacks/badge/", views.callback_badge, name="callback_badge"),
    path("callbacks/<int:pk>/<slug:action>/", views.callback_action, name="callback_action"),
    path("executions/<int:pk>/customer/", link_views.customer_inbox, name="customer_inbox"),
    # A signed link from a verification email or SMS: no login, see executions/links.py.
    path("answer/<str:token>/", link_views.callback_link, name="callback_link"),
    path("functions/", views.function_list, name="functions"),
    path("functions/<str:name>/", views.function_detail, name="function"),
    path("audit/", views.audit_list, name="audit"),
    path("workers/", views.workers_page, name="workers"),
]
