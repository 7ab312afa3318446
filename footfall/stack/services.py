"""The stack's services, in start order."""

from __future__ import annotations

from footfall.settings import Settings
from footfall.stack.base import Service
from footfall.stack.hbase import HBase
from footfall.stack.influxdb import InfluxDB
from footfall.stack.kafka import Kafka
from footfall.stack.spark import Spark

SERVICE_NAMES = ("kafka", "influxdb", "hbase", "spark")


def build_services(settings: Settings) -> list[Service]:
    """One instance of each service, configured from settings."""
    return [Kafka(settings), InfluxDB(settings), HBase(settings), Spark(settings)]
