"""Drop-in ingestion for trackers that sites already run: Plausible and GA4's Measurement Protocol.

Each format has a pure mapping module (`plausible`, `ga4`) turning its payload into events
of our wire format (footfall/events.py), and `routes` publishes them through the same
pipeline as `POST /v1/collect` (web/gateway/collect.ingest). The field-by-field mapping,
including what is dropped, is documented in docs/tracker.md.
"""
