"""Media beside rollout files: ``X.jsonl`` keeps its images, audio and video in
``X.media/``, from ``gymbus run``, ``gymbus collect`` (``--resume``, ``--remote`` envs) and
the Ray backend; text-only runs leave no folder; a folder that cannot be written is an
error naming it, and the rollouts written before stay."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

import gymbus
from gymbus.collect_config import CollectConfig, EnvEntry
from gymbus.envs.registry import available, load
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_files import MediaSaver, media_dir_for, media_refs
from gymbus.runtime.messages import MediaRef
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import RolloutSink, read_rollouts
from gymbus.server import ServerConfig, serve

GYMBUS = str(Path(sys.executable).parent / "gymbus")
MEDIA_ENVS = ("chart-reading", "dtmf-audio", "motion-video")  # image, audio, video
TOKEN = "media-files-token-0123456789abcdef"


async def _gymbus(*args: str, cwd: Path, **extra: str) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200", **extra}  # rich wraps messages at the width
    result = await anyio.run_process([GYMBUS, *args], check=False, cwd=cwd, env=env)
    return result.returncode, (result.stdout + result.stderr).decode()


def _refs(out: Path) -> set[MediaRef]:
    return {ref for _, rollout in read_rollouts(out) for ref in media_refs(rollout)}


def _kinds(out: Path) -> set[str]:
    """The kinds of stored media the file's messages hold (image, audio, video)."""
    return {
        part.type
        for _, rollout in read_rollouts(out)
        for message in rollout.messages
        for part in message.content
        if part.type != "text" and part.media is not None
    }


def _stats(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and modification time: a rewritten file (os.replace) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def assert_media_saved(out: Path) -> set[MediaRef]:
    """Every blob the file refers to is in its media folder, whole; nothing else is."""
    refs = _refs(out)
    folder = media_dir_for(out)
    assert refs
    for ref in refs:
        data = (folder / ref.sha256).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (ref.sha256, ref.size)
    assert sorted(p.name for p in folder.iterdir()) == sorted(r.sha256 for r in refs)
    return refs


async def _play(env: str, n: int, store: MediaStore | None = None) -> list[Rollout]:
    options = {} if store is None else {"media": store}
    return await gymbus.run(load(env, **options), gymbus.OracleModel(), n=n)


# -- the folder and the saver ----------------------------------------------------------------


def test_the_media_folder_is_named_after_the_rollout_file() -> None:
    assert media_dir_for(Path("out/r.jsonl")) == Path("out/r.media")
    assert media_dir_for(Path("out/rollouts")) == Path("out/rollouts.media")
    assert media_dir_for(Path("r.media")) == Path("r.media.media")  # never the file itself


@pytest.mark.anyio
async def test_a_blob_missing_from_the_store_is_logged_and_skipped(tmp_path: Path) -> None:
    (rollout,) = await _play("chart-reading", 1, MediaStore())
    saver = MediaSaver(tmp_path / "r.media", MediaStore())  # not the store that holds it
    with capture_logs() as logs:
        saver.save(rollout)
    assert [e["event"] for e in logs] == ["media.missing"]
    assert logs[0]["episode_id"] == rollout.episode_id
    assert not (tmp_path / "r.media").exists()


@pytest.mark.anyio
async def test_a_folder_that_cannot_be_written_stops_the_sink_and_keeps_earlier_lines(
    tmp_path: Path,
) -> None:
    store = MediaStore()
    text = await _play("retail-orders", 2)
    (chart,) = await _play("chart-reading", 1, store)
    out = tmp_path / "r.jsonl"
    (tmp_path / "r.media").write_text("not a folder")
    with RolloutSink(out, media=store) as sink:
        for rollout in text:
            sink.write(rollout)
        with pytest.raises(ConfigError, match=r"r\.media is not a folder"):
            sink.write(chart)
    assert [r for _, r in read_rollouts(out)] == text  # the media rollout is not written


# -- gymbus run / collect ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_run_saves_every_image_beside_the_rollout_file(tmp_path: Path) -> None:
    code, text = await _gymbus("run", "chart-reading", "--model", "oracle", "--n", "3",
                               "--out", "tmp/r.jsonl", cwd=tmp_path)  # fmt: skip
    assert code == 0, text
    assert len(assert_media_saved(tmp_path / "tmp" / "r.jsonl")) == 3


@pytest.mark.anyio
async def test_a_text_only_run_makes_no_media_folder(tmp_path: Path) -> None:
    code, text = await _gymbus("run", "retail-orders", "--n", "3", "--out", "r.jsonl",
                               cwd=tmp_path)  # fmt: skip
    assert code == 0, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # noqa: ASYNC240


@pytest.mark.anyio
async def test_collect_resume_neither_rewrites_nor_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    args = ["collect", *(a for env in MEDIA_ENVS for a in ("--env", env)), "--env",
            "retail-orders", "--n", "12", "--out", "c.jsonl", "--quiet"]  # fmt: skip
    code, text = await _gymbus(*args, cwd=tmp_path)
    assert code == 0, text
    first = assert_media_saved(out)
    assert _kinds(out) == {"image", "audio", "video"}
    written = _stats(media_dir_for(out))
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:5]))  # as if the run had been killed after 5 rollouts
    code, text = await _gymbus(*args, "--resume", cwd=tmp_path)
    assert code == 0, text
    assert assert_media_saved(out) == first
    assert _stats(media_dir_for(out)) == written  # not one blob written twice
    keys = Counter((r.env, r.seed, r.sample) for _, r in read_rollouts(out))
    assert (len(keys), max(keys.values())) == (12, 1)


@pytest.mark.anyio
async def test_a_media_folder_that_is_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    args = ["collect", "--env", "chart-reading", "--out", "c.jsonl", "--quiet"]
    code, text = await _gymbus(*args, "--n", "2", cwd=tmp_path)
    assert code == 0, text
    before = (tmp_path / "c.jsonl").read_bytes()
    shutil.rmtree(tmp_path / "c.media")
    (tmp_path / "c.media").write_text("in the way")
    code, text = await _gymbus(*args, "--n", "4", "--resume", cwd=tmp_path)
    assert code == 2, text
    assert "error: c.media is not a folder" in text
    assert "continue with --resume" in text
    assert "Traceback" not in text
    assert (tmp_path / "c.jsonl").read_bytes() == before  # nothing lost, nothing torn
    code, text = await _gymbus("run", "chart-reading", "--n", "2", "--out", "c.jsonl",
                               cwd=tmp_path)  # fmt: skip
    assert code == 2, text
    assert "error: c.media is not a folder" in text
    assert "Traceback" not in text


@pytest.mark.anyio
async def test_media_of_a_remote_environment_are_saved_by_the_client(tmp_path: Path) -> None:
    """The server is this process, the client a `gymbus run` subprocess: every blob comes
    over HTTP into the client's store, and from there into the media folder."""
    async with serve(ServerConfig(envs=available(), tokens=(TOKEN,))) as url:
        code, text = await _gymbus("run", "chart-reading", "--remote", url, "--n", "3",
                                   "--out", "remote.jsonl", cwd=tmp_path,
                                   GYMBUS_SERVER_TOKEN=TOKEN)  # fmt: skip
    assert code == 0, text
    assert len(assert_media_saved(tmp_path / "remote.jsonl")) == 3


# -- on Ray ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance with two CPUs (two workers), shut down after the module."""
    ray = pytest.importorskip("ray")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.anyio
async def test_ray_workers_save_the_media(ray_address: str, tmp_path: Path) -> None:
    """Into the folder beside a relative --out, though a worker's working directory is
    not the driver's."""
    code, text = await _gymbus(
        "collect", *(a for env in MEDIA_ENVS for a in ("--env", env)), "--n", "6",
        "--out", "ray.jsonl", "--quiet", "--backend", "ray", "--address", ray_address,
        "--workers", "2", cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, text
    assert len(list(read_rollouts(tmp_path / "ray.jsonl"))) == 6
    assert_media_saved(tmp_path / "ray.jsonl")
    assert _kinds(tmp_path / "ray.jsonl") == {"image", "audio", "video"}


@pytest.mark.slow
def test_a_ray_worker_that_cannot_save_media_stops_the_run(
    ray_address: str, tmp_path: Path
) -> None:
    from gymbus.ray_backend import RayCollector

    out = tmp_path / "ray.jsonl"
    media_dir_for(out).write_text("in the way")
    cfg = CollectConfig(envs={"chart-reading": EnvEntry()}, n=4, out=out)
    with pytest.raises(ConfigError, match=r"ray\.media is not a folder"):
        RayCollector(cfg, set(), workers=2).run()
    assert out.read_bytes() == b""
