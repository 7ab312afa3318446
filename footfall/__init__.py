"""Footfall: web analytics for merchants (README.md)."""

from footfall import native

#: Whether the counting core runs compiled (footfall/native.py), decided before it is imported.
NATIVE = native.activate()
