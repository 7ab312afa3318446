"""The collector gateway: validated, enriched events into Kafka, never a 202 for a lost one.

`app` builds the aiohttp application; `collect` holds the endpoints; `producer` the
all-acked-or-503 publishing; `limits` rate limiting and sampling; `metrics`, `logs` and
`health` what operators see; `commands` the `footfall gateway` sub-command.
"""
