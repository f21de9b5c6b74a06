"""One settings model per service, composed into the root Settings."""
