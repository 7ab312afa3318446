"""Stream-layer state: per-visitor sessions and per-minute metric buckets, their codecs,
the batch counting rules over them, and the Faust tables that hold them (docs/stream.md).
"""
