"""`gymbus envs`: filters, the matrix, and the generated docs page."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gymbus.catalogue import coverage, matrix, select
from gymbus.cli import app
from gymbus.envs.registry import available

DOCS = Path(__file__).resolve().parents[2] / "docs" / "environments.md"
runner = CliRunner()


def _names(*args: str) -> list[str]:
    result = runner.invoke(app, ["envs", "--json", *args])
    assert result.exit_code == 0, result.output
    return [row["name"] for row in orjson.loads(result.stdout)]


def test_filters_select_by_each_dimension() -> None:
    catalogue = available()
    for name, cls in catalogue.items():
        m = cls.metadata
        assert name in _names("--domain", m.knowledge_domain)
        assert name in _names("--verification", m.verification_method)
        for capability in m.core_capabilities:
            assert name in _names("--capability", capability)
        for structure in m.rollout_structures:
            assert name in _names("--structure", structure)
    assert "retail-orders" not in _names("--structure", "multi-modal")
    assert _names("--domain", "no-such-domain") == []


def test_filters_combine_with_and_across_options_and_or_within() -> None:
    catalogue = available()
    both = select(catalogue, capabilities=["information-dependency"], structures=["multi-turn"])
    for cls in both.values():
        assert "information-dependency" in cls.metadata.core_capabilities
        assert "multi-turn" in cls.metadata.rollout_structures
    either = select(catalogue, structures=["multi-step", "multi-modal"])
    assert set(either) == {
        n
        for n, c in catalogue.items()
        if {"multi-step", "multi-modal"} & set(c.metadata.rollout_structures)
    }


def test_an_unknown_vocabulary_value_is_a_usage_error() -> None:
    result = runner.invoke(app, ["envs", "--capability", "telepathy"])
    assert result.exit_code == 2
    assert "telepathy" in result.output


def test_the_matrix_puts_each_environment_in_its_cells() -> None:
    catalogue = available()
    cells = matrix(catalogue)
    for name, cls in catalogue.items():
        m = cls.metadata
        for capability in m.core_capabilities:
            for structure in m.rollout_structures or ("single-turn",):
                assert name in cells[capability][structure]
    result = runner.invoke(app, ["envs", "--matrix"], env={"COLUMNS": "220"})
    assert result.exit_code == 0
    assert "information-dependency" in result.stdout


def test_the_catalogue_covers_every_capability_and_structure() -> None:
    catalogue = available()
    assert len(catalogue) >= 10
    missing_capabilities, missing_structures = coverage(catalogue)
    assert missing_capabilities == set()
    assert missing_structures == set()


def test_docs_environments_md_is_current() -> None:
    result = runner.invoke(app, ["envs", "--markdown"])
    assert result.exit_code == 0
    assert DOCS.read_text() == result.stdout, (
        "docs/environments.md is stale: run `gymbus envs --markdown > docs/environments.md`"
    )


@pytest.mark.parametrize("option", ["--json", "--markdown", "--matrix"])
def test_every_view_lists_the_first_environment(option: str) -> None:
    result = runner.invoke(app, ["envs", option], env={"COLUMNS": "220"})
    assert result.exit_code == 0
    assert "retail-orders" in result.stdout
