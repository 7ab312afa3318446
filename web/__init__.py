"""The gateway: the HTTP side of Footfall, from collect requests to events.raw."""
