"""The top-level API is the map of the product: exactly what we mean to export."""

from __future__ import annotations

import gymbus
import gymbus.adapters
import gymbus.envs

EXPECTED = {
    # runtime: messages, tools, episodes, results
    "AssistantMessage", "AudioPart", "CompletedEpisode", "EndEpisode", "EpisodeJob",
    "EpisodeSpec", "Failure", "FunctionTool", "Generation", "ImagePart", "Limits", "MediaRef",
    "MediaStore", "Model", "ModelRequest", "Rollout", "Runtime", "SamplingParams", "Score",
    "Solver", "SystemMessage", "Task", "TextPart", "Tool", "ToolCall", "ToolMessage",
    "ToolSpec", "Toolbox", "Transcript", "Usage", "UserMessage", "UserSimulator", "Verifier",
    "VideoPart", "configure_logging",
    # errors
    "GymbusError", "InfraError", "InputError", "PolicyError", "ToolInputError",
    # adapters
    "FunctionModel", "HTTPClient", "NullModel", "OpenAIChat", "OpenAIResponses", "OracleModel",
    "RetryPolicy", "ScriptedModel", "make_model",
    # environments and composition
    "EnvMetadata", "Environment", "episode_jobs", "run",
    # subpackages and version
    "adapters", "envs", "runtime", "__version__",
}  # fmt: skip


def test_all_is_exactly_what_we_mean_to_export() -> None:
    assert set(gymbus.__all__) == EXPECTED
    assert len(gymbus.__all__) == len(EXPECTED)  # no duplicates
    for name in gymbus.__all__:
        assert hasattr(gymbus, name), name


def test_subpackages_have_explicit_all() -> None:
    for module in (gymbus.adapters, gymbus.envs):
        assert module.__all__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
