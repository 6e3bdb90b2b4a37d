"""gymbus: an async, event-driven agent-environment runtime for RL rollouts and evals.

This module is the map of the product: everything a user imports is re-exported here.
"""

import importlib
import os as _os

# In a source checkout the code folders sit beside this one (runtime/, envs/, adapters/
# install as gymbus.runtime, …). When Python imports gymbus from the checkout (the
# checkout is on sys.path: `python -c` in it, a Ray worker started there), find them
# there too, instead of failing to import gymbus.runtime.
if not _os.path.isdir(_os.path.join(__path__[0], "runtime")):
    __path__.append(_os.path.dirname(_os.path.abspath(__path__[0])))

from typing import TYPE_CHECKING, Any

from gymbus.runtime.logs import configure_logging, quiet_by_default

if TYPE_CHECKING:  # the names below are imported on first use (PEP 562), not here
    from gymbus import adapters, envs, runtime
    from gymbus.adapters import (
        FunctionModel,
        HTTPClient,
        NullModel,
        OpenAIChat,
        OpenAIResponses,
        OracleModel,
        RetryPolicy,
        ScriptedModel,
    )
    from gymbus.collection import episode_jobs, run
    from gymbus.envs import Environment, EnvMetadata
    from gymbus.envs.mcp_tools import MCPConnection, MCPServerParams, MCPToolset
    from gymbus.models import make_model
    from gymbus.runtime.episode_spec import EpisodeSpec
    from gymbus.runtime.errors import (
        GymbusError,
        InfraError,
        InputError,
        PolicyError,
        ToolInputError,
    )
    from gymbus.runtime.jobs import EpisodeJob
    from gymbus.runtime.limits import Limits
    from gymbus.runtime.media import MediaStore
    from gymbus.runtime.messages import (
        AssistantMessage,
        AudioPart,
        Generation,
        ImagePart,
        MediaRef,
        SystemMessage,
        TextPart,
        ToolCall,
        ToolMessage,
        Usage,
        UserMessage,
        VideoPart,
    )
    from gymbus.runtime.model import Model, ModelRequest, SamplingParams, Solver
    from gymbus.runtime.rollout import Failure, Rollout
    from gymbus.runtime.runtime import Runtime
    from gymbus.runtime.tasks import Task
    from gymbus.runtime.tools import FunctionTool, Tool, Toolbox, ToolSpec
    from gymbus.runtime.transcript import Transcript
    from gymbus.runtime.users import EndEpisode, UserSimulator
    from gymbus.runtime.verification import CompletedEpisode, Score, Verifier

_LAZY: dict[str, str] = {  # name → the module it comes from (a subpackage: itself)
    "adapters": "gymbus.adapters",
    "AssistantMessage": "gymbus.runtime.messages",
    "AudioPart": "gymbus.runtime.messages",
    "CompletedEpisode": "gymbus.runtime.verification",
    "EndEpisode": "gymbus.runtime.users",
    "Environment": "gymbus.envs",
    "EnvMetadata": "gymbus.envs",
    "envs": "gymbus.envs",
    "episode_jobs": "gymbus.collection",
    "EpisodeJob": "gymbus.runtime.jobs",
    "EpisodeSpec": "gymbus.runtime.episode_spec",
    "Failure": "gymbus.runtime.rollout",
    "FunctionModel": "gymbus.adapters",
    "FunctionTool": "gymbus.runtime.tools",
    "Generation": "gymbus.runtime.messages",
    "GymbusError": "gymbus.runtime.errors",
    "HTTPClient": "gymbus.adapters",
    "ImagePart": "gymbus.runtime.messages",
    "InfraError": "gymbus.runtime.errors",
    "InputError": "gymbus.runtime.errors",
    "Limits": "gymbus.runtime.limits",
    "make_model": "gymbus.models",
    "MCPConnection": "gymbus.envs.mcp_tools",
    "MCPServerParams": "gymbus.envs.mcp_tools",
    "MCPToolset": "gymbus.envs.mcp_tools",
    "MediaRef": "gymbus.runtime.messages",
    "MediaStore": "gymbus.runtime.media",
    "Model": "gymbus.runtime.model",
    "ModelRequest": "gymbus.runtime.model",
    "NullModel": "gymbus.adapters",
    "OpenAIChat": "gymbus.adapters",
    "OpenAIResponses": "gymbus.adapters",
    "OracleModel": "gymbus.adapters",
    "PolicyError": "gymbus.runtime.errors",
    "RetryPolicy": "gymbus.adapters",
    "Rollout": "gymbus.runtime.rollout",
    "run": "gymbus.collection",
    "runtime": "gymbus.runtime",
    "Runtime": "gymbus.runtime.runtime",
    "SamplingParams": "gymbus.runtime.model",
    "Score": "gymbus.runtime.verification",
    "ScriptedModel": "gymbus.adapters",
    "Solver": "gymbus.runtime.model",
    "SystemMessage": "gymbus.runtime.messages",
    "Task": "gymbus.runtime.tasks",
    "TextPart": "gymbus.runtime.messages",
    "Tool": "gymbus.runtime.tools",
    "Toolbox": "gymbus.runtime.tools",
    "ToolCall": "gymbus.runtime.messages",
    "ToolInputError": "gymbus.runtime.errors",
    "ToolMessage": "gymbus.runtime.messages",
    "ToolSpec": "gymbus.runtime.tools",
    "Transcript": "gymbus.runtime.transcript",
    "Usage": "gymbus.runtime.messages",
    "UserMessage": "gymbus.runtime.messages",
    "UserSimulator": "gymbus.runtime.users",
    "Verifier": "gymbus.runtime.verification",
    "VideoPart": "gymbus.runtime.messages",
}


def __getattr__(name: str) -> Any:
    """Import an exported name when it is first used: `import gymbus` stays cheap (a
    CLI command or a spawned tool server does not pay for the HTTP adapters it does not
    use)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gymbus' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"gymbus.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

quiet_by_default()  # a library stays quiet (warnings to stderr) until the app says otherwise

__all__ = [
    "AssistantMessage",
    "AudioPart",
    "CompletedEpisode",
    "EndEpisode",
    "EnvMetadata",
    "Environment",
    "EpisodeJob",
    "EpisodeSpec",
    "Failure",
    "FunctionModel",
    "FunctionTool",
    "Generation",
    "GymbusError",
    "HTTPClient",
    "ImagePart",
    "InfraError",
    "InputError",
    "Limits",
    "MCPConnection",
    "MCPServerParams",
    "MCPToolset",
    "MediaRef",
    "MediaStore",
    "Model",
    "ModelRequest",
    "NullModel",
    "OpenAIChat",
    "OpenAIResponses",
    "OracleModel",
    "PolicyError",
    "RetryPolicy",
    "Rollout",
    "Runtime",
    "SamplingParams",
    "Score",
    "ScriptedModel",
    "Solver",
    "SystemMessage",
    "Task",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolInputError",
    "ToolMessage",
    "ToolSpec",
    "Toolbox",
    "Transcript",
    "Usage",
    "UserMessage",
    "UserSimulator",
    "Verifier",
    "VideoPart",
    "__version__",
    "adapters",
    "configure_logging",
    "envs",
    "episode_jobs",
    "make_model",
    "run",
    "runtime",
]
