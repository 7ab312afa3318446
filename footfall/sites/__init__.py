"""Sites: the merchants' properties the gateway accepts events for."""
