from collections.abc import Iterable
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gymbus.envs import Environment, EnvMetadata, available, load, load_errors
from gymbus.envs.builtin.retail_orders import RetailOrders
from gymbus.envs.registry import ENTRY_POINT_GROUP, EnvironmentRegistry
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import MetadataError, UnknownEnvironmentError
from gymbus.runtime.tasks import Task

METADATA = EnvMetadata(
    rollout_structures=("multi-turn",),
    core_capabilities=("proactive-asking",),
    knowledge_domain="Testing",
    task_type="echo",
    verification_method="exact-match",
)


class Stub(Environment):
    name = "stub"
    metadata = METADATA

    def task(self, seed: int) -> Task:
        return Task(env=self.name, task_id=f"stub/{seed}", seed=seed)

    def episode(self, task: Task) -> EpisodeSpec:
        raise NotImplementedError


def registry(eps: Iterable[EntryPoint] = ()) -> EnvironmentRegistry:
    return EnvironmentRegistry(discover=lambda: list(eps))


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, ENTRY_POINT_GROUP)


@pytest.fixture
def fixture_envs_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put this folder on sys.path so entry points can name ``registry_fixture_envs``."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


# --- the installed catalogue --------------------------------------------------------------


def test_builtin_environment_is_found_through_the_entry_point_group() -> None:
    assert available()["retail-orders"] is RetailOrders
    assert load_errors() == ()


def test_load_builds_an_instance_with_options() -> None:
    env = load("retail-orders", difficulty="hard")
    assert isinstance(env, RetailOrders)
    assert env.difficulty == "hard"


def test_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(UnknownEnvironmentError, match="retail-orders") as info:
        load("retail-order")
    assert info.value.name == "retail-order"
    assert "retail-orders" in info.value.available


# --- register() ---------------------------------------------------------------------------


def test_register_works_as_decorator_and_load_instantiates() -> None:
    reg = registry()
    assert reg.register(Stub) is Stub
    assert reg.available() == {"stub": Stub}
    assert isinstance(reg.load("stub"), Stub)


def test_registering_the_same_class_twice_is_harmless() -> None:
    reg = registry()
    reg.register(Stub)
    reg.register(Stub)
    assert list(reg.available()) == ["stub"]


def test_duplicate_name_names_both_origins() -> None:
    class Impostor(Stub):
        pass

    reg = registry()
    reg.register(Stub)
    with pytest.raises(MetadataError) as info:
        reg.register(Impostor)
    message = str(info.value)
    assert "'stub' is claimed twice" in message
    assert f"register({__name__}.Stub)" in message
    assert "Impostor" in message
    assert reg.available()["stub"] is Stub


@pytest.mark.parametrize("bad_name", ["Stub", "stub_env", "-stub", "stub-", "", "two  words"])
def test_name_must_be_kebab_case(bad_name: str) -> None:
    cls = type("Named", (Stub,), {"name": bad_name})
    with pytest.raises(MetadataError, match="kebab-case"):
        registry().register(cls)


def test_name_is_required() -> None:
    class Nameless(Environment):
        metadata = METADATA

        def task(self, seed: int) -> Task:
            raise NotImplementedError

        def episode(self, task: Task) -> EpisodeSpec:
            raise NotImplementedError

    with pytest.raises(MetadataError, match="Nameless: name must be kebab-case"):
        registry().register(Nameless)


def test_metadata_must_be_env_metadata() -> None:
    cls = type("DictMeta", (Stub,), {"name": "dict-meta", "metadata": {"task_type": "x"}})
    with pytest.raises(MetadataError, match="'dict-meta': metadata must be an EnvMetadata"):
        registry().register(cls)


def test_metadata_is_revalidated_and_the_error_names_env_and_field() -> None:
    unchecked = EnvMetadata.model_construct(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency",),
        knowledge_domain="retail",
        task_type="lookup",
        verification_method="vibes",  # type: ignore[arg-type]
    )
    cls = type("Unchecked", (Stub,), {"name": "unchecked", "metadata": unchecked})
    with pytest.raises(MetadataError) as info:
        registry().register(cls)
    assert "'unchecked'" in str(info.value)
    assert "field verification_method" in str(info.value)


def test_cross_field_metadata_rule_is_reported() -> None:
    unchecked = METADATA.model_copy(update={"rollout_structures": ("multi-step",)})
    cls = type("Unchecked", (Stub,), {"name": "unchecked", "metadata": unchecked})
    with pytest.raises(MetadataError, match=r"proactive-asking.*requires rollout structure"):
        registry().register(cls)


def test_only_concrete_environment_subclasses_register() -> None:
    with pytest.raises(MetadataError, match="not a subclass"):
        registry().register(dict)  # type: ignore[arg-type]
    abstract = type("Abstract", (Environment,), {"name": "abstract", "metadata": METADATA})
    with pytest.raises(MetadataError, match=r"abstract.*episode, task"):
        registry().register(abstract)


# --- entry points ---------------------------------------------------------------------------


@pytest.mark.usefixtures("fixture_envs_importable")
def test_entry_points_load_and_failures_are_logged_and_skipped() -> None:
    eps = [
        entry_point("good-env", "registry_fixture_envs:GoodEnv"),
        entry_point("missing", "gymbus_no_such_module_for_tests:Env"),
        entry_point("bad-metadata-env", "registry_fixture_envs:BadMetadataEnv"),
        entry_point("not-a-class", "registry_fixture_envs:not_a_class"),
        entry_point("renamed", "registry_fixture_envs:OtherGoodEnv"),
        entry_point("other-good-env", "registry_fixture_envs:OtherGoodEnv"),
    ]
    reg = registry(eps)
    with capture_logs() as logs:
        found = reg.available()
    assert list(found) == ["good-env", "other-good-env"]
    failures = {f.name: f for f in reg.load_errors()}
    assert list(failures) == ["missing", "bad-metadata-env", "not-a-class", "renamed"]
    assert failures["missing"].error.startswith("ModuleNotFoundError")
    assert failures["missing"].value == "gymbus_no_such_module_for_tests:Env"
    assert "field verification_method" in failures["bad-metadata-env"].error
    assert "not a subclass" in failures["not-a-class"].error
    assert "does not match the environment's name 'other-good-env'" in failures["renamed"].error
    assert [(e["event"], e["log_level"], e["name"]) for e in logs] == [
        ("env.entry_point_failed", "warning", name) for name in failures
    ]
    assert all(e["error"] == failures[e["name"]].error for e in logs)


@pytest.mark.usefixtures("fixture_envs_importable")
def test_entry_points_are_discovered_once() -> None:
    calls = []

    def discover() -> list[EntryPoint]:
        calls.append(1)
        return [entry_point("good-env", "registry_fixture_envs:GoodEnv")]

    reg = EnvironmentRegistry(discover=discover)
    reg.available()
    reg.available()
    reg.load("good-env")
    reg.load_errors()
    assert len(calls) == 1


@pytest.mark.usefixtures("fixture_envs_importable")
def test_register_conflicting_with_an_entry_point_names_both_origins() -> None:
    reg = registry([entry_point("good-env", "registry_fixture_envs:GoodEnv")])
    impostor = type("Impostor", (Stub,), {"name": "good-env"})
    with pytest.raises(MetadataError) as info:
        reg.register(impostor)
    assert "entry point 'good-env' = 'registry_fixture_envs:GoodEnv'" in str(info.value)
    assert "register(" in str(info.value)


@pytest.mark.usefixtures("fixture_envs_importable")
def test_duplicate_entry_points_keep_the_first_and_report_the_second() -> None:
    reg = registry(
        [
            entry_point("good-env", "registry_fixture_envs:GoodEnv"),
            entry_point("good-env", "registry_fixture_envs:GoodEnv"),  # same class: fine
            entry_point("good-env", "registry_fixture_envs:SameNameEnv"),
        ]
    )
    assert reg.available()["good-env"].__name__ == "GoodEnv"
    (failure,) = reg.load_errors()
    assert failure.value == "registry_fixture_envs:SameNameEnv"
    assert "'good-env' is claimed twice" in failure.error
