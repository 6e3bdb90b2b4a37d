"""gymbus model adapters: OpenAI-compatible clients and offline models.

Every adapter implements :class:`gymbus.runtime.model.Model`. The OpenAI adapters share
connections through one :class:`HTTPClient` (pass ``client=``); offline models need no
network and are deterministic.
"""

from gymbus.adapters.http import HTTPClient, HTTPResult, ModelEndpoint, RetryPolicy
from gymbus.adapters.offline import FunctionModel, NullModel, OracleModel, ScriptedModel
from gymbus.adapters.openai_chat import OpenAIChat, merge_params
from gymbus.adapters.openai_responses import OpenAIResponses

__all__ = [
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
    "merge_params",
]
