"""A fake of X's private GraphQL API (what twscrape calls), serving a seeded synthetic corpus."""

from twitstack.sandbox.graphql.app import GraphQLFake, SeenRequest, create_app
from twitstack.sandbox.graphql.corpus import SynthCorpus, SynthTweet, SynthUser
from twitstack.sandbox.graphql.faults import FAULT_KINDS, Fault, FaultKind

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "GraphQLFake",
    "SeenRequest",
    "SynthCorpus",
    "SynthTweet",
    "SynthUser",
    "create_app",
]
