from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "durable_site.settings")
application = get_wsgi_application()

from engine.celery_tasks import load_broker_transport  # noqa: E402  (needs the settings loaded above)

load_broker_transport()
