"""`twitstack demo`: the real daemon, embedded: in-process Redis and the fake X on loopback."""
