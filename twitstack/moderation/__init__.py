"""The moderation service: web UI and JSON API to review write requests."""
