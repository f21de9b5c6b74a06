"""Plumbing that knows nothing about tweets: config, logging, secrets, Redis, metrics."""
