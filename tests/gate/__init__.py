"""The whole-daemon release gate: chaos scenario against real processes, Redis and fakes."""
