"""Handlers for the plugin conformance suite, written from each requirement's text."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {}
