"""`gymbus init`: the scaffold installs, registers through the entry point and passes
`gymbus test` — run as a user would, in subprocesses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

BIN = Path(sys.executable).parent


async def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str]:
    # cwd defaults to a folder outside the checkout: `python -m` puts the current folder on
    # sys.path, and the source folder gymbus/ must not shadow the installed package
    result = await anyio.run_process(list(args), check=False, env=env, cwd=cwd or Path("/"))
    return result.returncode, (result.stdout + result.stderr).decode()


@pytest.mark.anyio
async def test_a_scaffolded_environment_installs_and_passes_its_self_test(
    tmp_path: Path,
) -> None:
    code, out = await _run(str(BIN / "gymbus"), "init", "price-check", "--dir", str(tmp_path))
    assert code == 0, out
    package = tmp_path / "price-check"
    assert (package / "src" / "price_check" / "env.py").is_file()
    target = tmp_path / "site"  # install beside, not into, the test venv
    code, out = await _run(
        sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
        "--target", str(target), str(package),
    )  # fmt: skip
    assert code == 0, out
    env = {**os.environ, "PYTHONPATH": str(target)}
    code, out = await _run(str(BIN / "gymbus"), "envs", "--domain", "retail", env=env)
    assert code == 0, out
    assert "price-check" in out
    code, out = await _run(str(BIN / "gymbus"), "test", "price-check", "--seeds", "5", env=env)
    assert code == 0, out
    code, out = await _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(package / "tests"), env=env)  # fmt: skip
    assert code == 0, out


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["Bad_Name", "retail orders", "x-", "9lives"])
async def test_a_bad_name_is_refused(name: str, tmp_path: Path) -> None:
    code, out = await _run(str(BIN / "gymbus"), "init", name, "--dir", str(tmp_path))
    assert code == 2
    assert "kebab-case" in out


@pytest.mark.anyio
async def test_an_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, out = await _run(str(BIN / "gymbus"), "init", "taken", "--dir", str(tmp_path))
    assert code == 2
    assert "not empty" in out
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
