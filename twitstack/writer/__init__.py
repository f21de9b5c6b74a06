"""The writer service: executes approved write requests against the X API v2."""
