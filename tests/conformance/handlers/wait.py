"""Handlers for the 'wait' conformance suite, written from each requirement's text."""

from __future__ import annotations

from tests.conformance.runner import Spec

SPECS: dict[str, Spec] = {}
