"""gymbus environments: the catalogue, tools, simulated users and verifiers."""

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.registry import EntryPointFailure, available, load, load_errors, register
from gymbus.envs.verifiers import ExactMatchVerifier

__all__ = [
    "Difficulty",
    "EntryPointFailure",
    "EnvMetadata",
    "Environment",
    "ExactMatchVerifier",
    "available",
    "load",
    "load_errors",
    "register",
]
