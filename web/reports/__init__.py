"""The reporting API and the dashboard, served by the stream workers (docs/reports.md).

params (query parsing) -> service (which source answers which minutes) -> sources:
local + gather (the worker tables, every partition), history (HBase, InfluxDB) -> merge
(counters summed, sketches unioned) -> handlers (auth, errors, JSON) -> views (Faust).
"""
