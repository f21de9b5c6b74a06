"""Operator tools: `twitstack doctor`, `enqueue`, `queue stats` and `dlq list|retry|purge`."""
