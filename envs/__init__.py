"""gymbus environments: the catalogue, tools, simulated users and verifiers."""

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.registry import EntryPointFailure, available, load, load_errors, register
from gymbus.envs.users import ScriptedUser, UserScript
from gymbus.envs.verifiers import ExactMatchVerifier, StateCheckVerifier

__all__ = [
    "Difficulty",
    "EntryPointFailure",
    "EnvMetadata",
    "Environment",
    "ExactMatchVerifier",
    "ScriptedUser",
    "StateCheckVerifier",
    "UserScript",
    "available",
    "load",
    "load_errors",
    "register",
]
