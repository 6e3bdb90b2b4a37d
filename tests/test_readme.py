"""The README's embedding example runs as written, against a real local server."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import pytest

from tests.openai_server import OpenAIServer
from tests.solver_policy import retail_solver_policy

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_opens_with_exactly_two_setup_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "gymbus run" in commands[0]
    assert "--model oracle" in commands[0]
    assert commands[1].endswith("pytest")


@pytest.mark.anyio
async def test_the_embedding_example_runs_against_a_local_server(tmp_path: Path) -> None:
    [example] = _python_blocks()
    async with OpenAIServer(policy=retail_solver_policy) as server:
        code = example.replace("http://127.0.0.1:8000/v1", server.base_url)
        assert code != example
        # run outside the checkout: `python -c` puts the current folder on sys.path, and the
        # source folder gymbus/ must not shadow the installed package
        result = await anyio.run_process([sys.executable, "-c", code], check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 100 * 8
    rewards = {line.split()[1] for line in lines}
    assert rewards == {"1.0"}
    assert all(line.split(maxsplit=2)[2].startswith("(") for line in lines)  # token ids
