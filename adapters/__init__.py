"""gymbus model adapters: OpenAI-compatible clients and offline models.

Every adapter implements :class:`gymbus.runtime.model.Model`. The OpenAI adapters share
connections through one :class:`HTTPClient` (pass ``client=``); offline models need no
network and are deterministic. :class:`FaultyModelServer` is a local OpenAI-compatible
server that injects the faults real servers have, for testing code that uses a model.
"""

from gymbus.adapters.http import HTTPClient, HTTPResult, ModelEndpoint, RetryPolicy
from gymbus.adapters.offline import FunctionModel, NullModel, OracleModel, ScriptedModel
from gymbus.adapters.openai_chat import OpenAIChat, merge_params
from gymbus.adapters.openai_responses import OpenAIResponses
from gymbus.adapters.testing import (
    FAULT_KINDS,
    FaultCounts,
    FaultKind,
    FaultPlan,
    FaultyModelServer,
    ServerPolicy,
    echo_policy,
    solver_policy,
)

__all__ = [
    "FAULT_KINDS",
    "FaultCounts",
    "FaultKind",
    "FaultPlan",
    "FaultyModelServer",
    "FunctionModel",
    "HTTPClient",
    "HTTPResult",
    "ModelEndpoint",
    "NullModel",
    "OpenAIChat",
    "OpenAIResponses",
    "OracleModel",
    "RetryPolicy",
    "ScriptedModel",
    "ServerPolicy",
    "echo_policy",
    "merge_params",
    "solver_policy",
]
