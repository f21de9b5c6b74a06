"""Fakes of X for tests, the demo and dry runs: the v2 write API and the GraphQL API."""
