"""Faust agents of the stream layer: counting, the raw archive, the InfluxDB sink."""
