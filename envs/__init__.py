"""gymbus environments: the catalogue, tools, simulated users and verifiers."""

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.code_tool import python_exec_tool
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.registry import EntryPointFailure, available, load, load_errors, register
from gymbus.envs.sandbox import Sandbox, SandboxLimits, SandboxResult
from gymbus.envs.users import ScriptedUser, UserScript
from gymbus.envs.verifiers import ExactMatchVerifier, StateCheckVerifier

__all__ = [
    "Difficulty",
    "EntryPointFailure",
    "EnvMetadata",
    "Environment",
    "ExactMatchVerifier",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "ScriptedUser",
    "StateCheckVerifier",
    "UserScript",
    "available",
    "load",
    "load_errors",
    "python_exec_tool",
    "register",
]
