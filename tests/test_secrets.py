"""Secrets never leak: with the API key and the environment-server tokens set to canary
values, every failure path is walked — a model server that answers 401/403/500/502 and
echoes the Authorization header back (in JSON, in plain text, in a header), one that
redirects in a loop, a closed port, an environment server given the wrong token, and
``gymbus run`` / ``gymbus collect`` with JSON debug logs — and the canaries must appear
in no log, rollout file, error message, exception repr or object repr.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import anyio
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

import gymbus
from gymbus.adapters.http import HTTPClient, ModelEndpoint, RetryPolicy
from gymbus.envs.registry import available
from gymbus.models import Api, make_model
from gymbus.remote import RemoteEnv, remote_episode_jobs
from gymbus.remote_protocol import TOKEN_ENV
from gymbus.runtime.errors import BadTaskError, ConfigError, ModelError
from gymbus.runtime.rollout import Rollout
from gymbus.server import ServerConfig, serve
from tests.openai_server import request_for

pytestmark = pytest.mark.anyio

API_KEY = "sk-canary-API-KEY-5f1e0c9d7b3a"
SERVER_TOKEN = "gbs-canary-SERVER-TOKEN-8a2d4e6f"
WRONG_TOKEN = "gbs-canary-WRONG-TOKEN-3c5b7d9e1f"  # the client's (wrong) token: a secret too
CANARIES = (API_KEY, SERVER_TOKEN, WRONG_TOKEN)
GYMBUS = str(Path(sys.executable).parent / "gymbus")
FAST = RetryPolicy(max_attempts=2, base_delay=0.001)
ECHOES = ("json401", "json500", "text502", "detail403", "redirect")


def assert_clean(texts: Iterable[object]) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in str(text), f"{canary!r} leaked into: {str(text)[:500]}"


def _chain(exc: BaseException) -> list[str]:
    """str and repr of an exception, its args, and of the exceptions a traceback of it
    would show (``raise … from None`` hides the one it was raised from)."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return texts


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class LeakyServer:
    """A careless server on 127.0.0.1: it answers every request with an error that
    repeats the request's Authorization header, in the ways ``modes`` says (one per
    request, in turn), or redirects to itself forever."""

    def __init__(self, modes: Sequence[str]) -> None:
        self.modes = tuple(modes)
        self.authorizations: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self._server.make_url(""))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        mode = self.modes[len(self.authorizations) % len(self.modes)]
        self.authorizations.append(auth)
        echo = {"X-Echo": auth}
        if mode == "redirect":
            raise web.HTTPTemporaryRedirect(str(request.rel_url), headers=echo)
        if mode == "text502":
            dump = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
            return web.Response(status=502, text=f"bad gateway\n{dump}", headers=echo)
        if mode == "detail403":
            return web.json_response({"detail": f"forbidden for {auth}"}, status=403)
        status = 401 if mode == "json401" else 500
        error = {"message": f"Incorrect API key provided: {auth}", "code": auth}
        return web.json_response({"error": error}, status=status, headers=echo)

    async def __aenter__(self) -> LeakyServer:
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.close()


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv(TOKEN_ENV, WRONG_TOKEN)


@pytest.fixture
async def env_server() -> AsyncIterator[str]:
    """``gymbus serve`` in-process, accepting only SERVER_TOKEN."""
    envs = {"retail-orders": available()["retail-orders"]}
    config = ServerConfig(envs=envs, tokens=(SERVER_TOKEN,))
    async with serve(config) as url:
        yield url


# --- in-process ---------------------------------------------------------------------


@pytest.mark.usefixtures("canaries")
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_model_server_failures_never_show_the_api_key(api: Api) -> None:
    texts: list[object] = []
    with structlog.testing.capture_logs() as logs:
        async with LeakyServer(ECHOES) as server, HTTPClient(retry=FAST) as http:
            urls = (server.url + "/v1", f"http://127.0.0.1:{closed_port()}/v1")
            for url in urls:
                model = make_model("openai:m", base_url=url, api=api, client=http, retry=FAST)
                texts += [repr(model), repr(http), repr(ModelEndpoint(url, client=http))]
                env = gymbus.envs.load("retail-orders")
                async with gymbus.Runtime(model, concurrency=2) as runtime:
                    rollouts = await runtime.run(gymbus.episode_jobs(env, range(len(ECHOES))))
                for rollout in rollouts:
                    assert rollout.failure is not None
                    assert rollout.failure.kind == "model"
                    texts.append(rollout.to_json_line().decode())
                for _ in ECHOES:
                    with pytest.raises(ModelError) as info:
                        await model.generate(request_for(gymbus.UserMessage(content="hi")))
                    texts += _chain(info.value)
        assert f"Bearer {API_KEY}" in server.authorizations  # it was sent …
    assert logs, "retries are logged at debug level"
    texts.append(repr(logs))
    assert_clean(texts)  # … and shown nowhere


@pytest.mark.usefixtures("canaries")
async def test_an_environment_server_given_the_wrong_token(env_server: str) -> None:
    texts: list[object] = []
    with structlog.testing.capture_logs() as logs:  # the server's logs too: same process
        async with HTTPClient(retry=FAST) as http:
            remote = RemoteEnv(env_server, "retail-orders", client=http)  # token from env
            texts += [repr(remote), repr(http)]
            with pytest.raises(ConfigError, match="401") as refused:
                await remote.describe()
            with pytest.raises(BadTaskError, match="401") as not_started:
                await remote.start(0)
            texts += _chain(refused.value) + _chain(not_started.value)
            async with gymbus.Runtime(gymbus.OracleModel()) as runtime:
                rollouts = await runtime.run(remote_episode_jobs(remote, range(3)))
    assert [r.failure.kind for r in rollouts if r.failure] == ["bad_task"] * 3
    texts += [r.to_json_line().decode() for r in rollouts]
    texts.append(repr(logs))
    assert_clean(texts)


@pytest.mark.usefixtures("canaries")
@pytest.mark.parametrize("mode", ECHOES)
async def test_an_environment_server_that_echoes_the_token(mode: str) -> None:
    """Regression (``redirect``): a redirect loop raised aiohttp's TooManyRedirects, and
    RemoteEnv put its repr — the request's headers, bearer token included — into the
    error message (and so into ``gymbus run --remote``'s output and the rollouts)."""
    texts: list[object] = []
    with structlog.testing.capture_logs() as logs:
        async with LeakyServer([mode]) as server, HTTPClient(retry=FAST) as http:
            remote = RemoteEnv(server.url, "retail-orders", token=SERVER_TOKEN, client=http)
            texts.append(repr(remote))
            with pytest.raises(ConfigError) as refused:
                await remote.describe()
            with pytest.raises(BadTaskError) as not_started:
                await remote.start(0)
            texts += _chain(refused.value) + _chain(not_started.value)
        assert f"Bearer {SERVER_TOKEN}" in server.authorizations
    texts.append(repr(logs))
    assert_clean(texts)


# --- the command line ---------------------------------------------------------------


async def _gymbus(*args: str, cwd: Path) -> str:
    """Run ``gymbus`` with the canaries in its environment and JSON debug logs; return
    stdout + stderr."""
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, TOKEN_ENV: WRONG_TOKEN, "COLUMNS": "200"}
    command = [GYMBUS, "--log-format", "json", "--log-level", "debug", *args]
    result = await anyio.run_process(command, check=False, cwd=cwd, env=env)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode in (1, 2), output  # every run here fails, none crashes
    assert "Traceback" not in output
    return output


async def test_gymbus_run_and_collect_keep_the_secrets(tmp_path: Path, env_server: str) -> None:
    outputs: list[str] = []
    async with (
        LeakyServer(["json500", "text502", "json401"]) as models,
        LeakyServer(["redirect"]) as proxy,
    ):
        out = tmp_path / "run.jsonl"
        run = [
            "run", "retail-orders", "--model", "openai:m", "--base-url", models.url + "/v1",
            "--n", "3", "--max-attempts", "2", "--out", str(out),
        ]  # fmt: skip
        outputs.append(await _gymbus(*run, cwd=tmp_path))
        outputs.append(out.read_text())
        for remote in (env_server, proxy.url):  # a wrong token; a proxy that loops
            outputs.append(
                await _gymbus("run", "retail-orders", "--remote", remote, "--n", "2", cwd=tmp_path)
            )
        config = tmp_path / "mix.toml"
        config.write_text(
            f'model = "openai:m"\nbase_url = "{models.url}/v1"\nn = 3\nmax_attempts = 2\n'
            f'out = "collect.jsonl"\n[envs.retail-orders]\n'
        )
        outputs.append(await _gymbus("collect", "--config", str(config), "--quiet", cwd=tmp_path))
        outputs.append((tmp_path / "collect.jsonl").read_text())
        assert f"Bearer {API_KEY}" in models.authorizations
        assert f"Bearer {WRONG_TOKEN}" in proxy.authorizations
    rows = [Rollout.model_validate_json(line) for line in outputs[1].splitlines()]
    assert {r.failure.kind for r in rows if r.failure} == {"model"}
    assert any('"event":"model.http.retry"' in o.replace(" ", "") for o in outputs)  # debug on
    assert_clean(outputs)
