"""gymbus: an async, event-driven agent-environment runtime for RL rollouts and evals.

This module is the map of the product: everything a user imports is re-exported here.
"""

import os as _os

# In a source checkout the code folders sit beside this one (runtime/, envs/, adapters/
# install as gymbus.runtime, …). When Python imports gymbus from the checkout (the
# checkout is on sys.path: `python -c` in it, a Ray worker started there), find them
# there too, instead of failing to import gymbus.runtime.
if not _os.path.isdir(_os.path.join(__path__[0], "runtime")):
    __path__.append(_os.path.dirname(_os.path.abspath(__path__[0])))

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
from gymbus.runtime.logs import configure_logging, quiet_by_default
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
