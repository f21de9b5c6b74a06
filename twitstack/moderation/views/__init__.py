"""Server-rendered pages of the moderation UI, one module per area."""
