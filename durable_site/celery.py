from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "durable_site.settings")

app = Celery("durable_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["engine"], related_name="celery_tasks")
