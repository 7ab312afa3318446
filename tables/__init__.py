"""Stream-layer state: per-visitor sessions and per-minute metric buckets, their codecs,
the batch counting rules over them, and the Faust tables that hold them (docs/stream.md).
"""

# The counting core here may run compiled: `footfall` decides which (footfall/native.py)
# before any module of it is imported.
import footfall  # noqa: F401
