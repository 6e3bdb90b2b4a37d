import gymbus.envs


def test_public_names_are_exactly_what_we_mean_to_export() -> None:
    assert sorted(gymbus.envs.__all__) == [
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
    for name in gymbus.envs.__all__:
        assert hasattr(gymbus.envs, name)
