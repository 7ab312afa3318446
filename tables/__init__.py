"""Stream-layer state: per-visitor sessions and per-minute metric buckets, their codecs,
the batch counting rules over them, and the Faust tables that hold them (docs/stream.md).
"""

from tables import native

#: Whether the counting core runs compiled (tables/native.py), decided before it is imported.
NATIVE = native.activate()
