"""Handlers for the wait_for_condition conformance suite, written from each requirement's text."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {}
