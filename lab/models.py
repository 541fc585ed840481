"""A saved comparison: one scenario run under several variants at once, one execution each."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# The languages a demo's handler is written in: Python runs in the worker, TypeScript on Node 22.
LANGUAGES = [("python", "Python"), ("typescript", "TypeScript")]


class Comparison(models.Model):
    title = models.CharField(max_length=200)
    # Which catalogue entry built the variants (``lab.scenarios.SCENARIOS``), and which demo page, if any.
    scenario = models.CharField(max_length=32)
    demo = models.CharField(max_length=32, blank=True, default="")
    function_name = models.CharField(max_length=64)
    time_scale = models.FloatField(default=1.0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.created_at:%Y-%m-%d %H:%M})"


class Variant(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="variants")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=200)
    semantics = models.CharField(max_length=32, blank=True, default="")
    retry = models.JSONField(default=dict, blank=True)
    fault = models.JSONField(default=dict, blank=True)
    payload = models.TextField()
    # The function this variant invokes, when it is not the comparison's: a demo run in several
    # languages runs each language's own function (a TypeScript seed handler per scenario).
    function_name = models.CharField(max_length=64, blank=True, default="")
    language = models.CharField(max_length=16, blank=True, default="", choices=LANGUAGES)
    # A plain string, not a foreign key: the engine's executions expire by retention.
    execution_arn = models.CharField(max_length=512, blank=True, default="")
    start_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["comparison", "position"]
        constraints = [models.UniqueConstraint(fields=["comparison", "position"], name="lab_variant_position")]

    def __str__(self) -> str:
        return self.label

    @property
    def invoked_function(self) -> str:
        return self.function_name or self.comparison.function_name
