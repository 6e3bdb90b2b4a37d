"""The top-level API is the map of the product: exactly what we mean to export."""

from __future__ import annotations

import pytest

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
    # tools from MCP servers
    "MCPConnection", "MCPServerParams", "MCPToolset",
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


def test_the_library_is_quiet_by_default_and_respects_an_app_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import structlog

    from gymbus.runtime.logs import quiet_by_default

    structlog.reset_defaults()
    quiet_by_default()
    log = structlog.get_logger("gymbus.test")
    log.debug("retrying")  # debug events of a library stay silent …
    log.warning("something odd")  # … warnings go to stderr
    out, err = capsys.readouterr()
    assert out == ""
    assert "retrying" not in err
    assert "something odd" in err
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(10))
    quiet_by_default()  # an application's configuration stands
    structlog.get_logger("gymbus.test").debug("now visible")
    assert "now visible" in "".join(capsys.readouterr())
