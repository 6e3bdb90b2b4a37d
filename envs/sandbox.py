"""Run untrusted Python in a subprocess under limits: the sandbox behind the code verifier
and the ``python_exec`` tool (docs/sandbox.md says what holds against what).

Each run: ``sys.executable -I -S``, a fresh private temporary directory (deleted after), an
environment of four variables (nothing of ours), and — set up in the child by
:mod:`~gymbus.envs.sandbox_bootstrap` — user and network namespaces where the kernel
allows, rlimits and an audit hook. A wall-clock timeout, and in any case the end of the
run, kills every process of the session and the network namespace. Only the first
``output_limit`` bytes of stdout and stderr are read back. Blocking work runs in worker
threads. Whose fault: whatever the code does is a normal result; a sandbox that cannot
start or never reports in raises :class:`SandboxError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
from pydantic import Field

from gymbus.runtime.errors import ToolError
from gymbus.runtime.messages import Frozen

__all__ = ["Sandbox", "SandboxError", "SandboxLimits", "SandboxProtections", "SandboxResult"]

_OUTPUT_FILES = ("stdout.txt", "stderr.txt")
_LOG_LIMIT = 64 * 2**10
_STARTUP_SECONDS = 10.0  # for the interpreter to start and report in, on a busy machine


class SandboxError(ToolError):
    """The sandbox could not run the code (infrastructure, not the code's fault)."""


class SandboxLimits(Frozen):
    """Limits of one run. ``timeout`` is wall-clock seconds from when the code starts (the
    interpreter has up to 10 s to start first); ``cpu_seconds`` is per process;
    ``max_processes`` is how many processes the code may start in all (a fork budget, and
    RLIMIT_NPROC where the kernel applies it); ``output_limit`` is how many bytes of
    stdout and of stderr are kept."""

    timeout: float = Field(default=10.0, gt=0)
    cpu_seconds: int = Field(default=10, gt=0)
    memory_bytes: int = Field(default=512 * 2**20, gt=0)
    file_bytes: int = Field(default=16 * 2**20, gt=0)
    open_files: int = Field(default=64, ge=16)
    max_processes: int = Field(default=16, ge=0, le=4096)
    output_limit: int = Field(default=64 * 2**10, ge=0)


class SandboxProtections(Frozen):
    """What was in force for a run (it depends on the platform and privileges)."""

    network_isolated: bool
    """A new network namespace: no interface but a loopback that is down."""
    user_namespace: bool
    """A new user namespace: no capabilities outside it (limits cannot be raised again)."""
    nproc_enforced: bool
    """RLIMIT_NPROC applies (it never does to uid 0)."""
    audit_hook: bool
    limits: dict[str, int]
    """The rlimits set: cpu, memory, file_size, open_files, processes, core."""


class SandboxResult(Frozen):
    """What a run did. ``exit_code`` is the process's status, negative when a signal ended
    it (``-SIGXCPU``: the CPU limit), ``None`` when the wall-clock timeout stopped it."""

    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    refused: tuple[str, ...] = ()
    """What the audit hook refused, in order (first few per process)."""
    stray_processes: int = 0
    """Processes the code left running, killed when the run ended."""
    duration_s: float
    protections: SandboxProtections
    files: dict[str, bytes] = Field(default_factory=dict)

    @property
    def signal(self) -> str | None:
        if self.exit_code is None or self.exit_code >= 0:
            return None
        try:
            return signal.Signals(-self.exit_code).name
        except ValueError:
            return f"signal {-self.exit_code}"

    @property
    def outcome(self) -> str:
        """One line: how the run ended."""
        if self.timed_out:
            return "stopped at the wall-clock timeout"
        if self.exit_code is not None and self.exit_code == -signal.SIGXCPU:
            return f"killed by SIGXCPU: CPU time limit ({self.protections.limits.get('cpu')} s)"
        if self.exit_code is not None and self.exit_code < 0:
            return f"killed by {self.signal}"
        return f"exited with code {self.exit_code}"


class Sandbox:
    """Runs Python source under :class:`SandboxLimits`. ``audit=False`` leaves out the audit
    hook (the kernel-enforced protections stay)."""

    __slots__ = ("_audit", "_limits", "_python")

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        python: str = sys.executable,
        audit: bool = True,
    ) -> None:
        self._limits = limits or SandboxLimits()
        self._python = python
        self._audit = audit

    @property
    def limits(self) -> SandboxLimits:
        return self._limits

    async def run(
        self,
        code: str,
        *,
        args: Sequence[str] = (),
        files: Mapping[str, str | bytes] | None = None,
        collect: Sequence[str] = (),
        filename: str = "main.py",
    ) -> SandboxResult:
        """Run ``code`` as ``__main__`` (tracebacks name it ``filename``) with ``sys.argv``
        ``[filename, *args]``. ``files`` are written to the working directory first;
        ``collect`` names files read back from it after the run (regular files only, up to
        the file-size limit each, missing ones left out)."""
        for name in [*(files or {}), *collect]:
            if "/" in name or name in ("", ".", "..", *_OUTPUT_FILES):
                raise ValueError(f"not a plain file name of the sandbox directory: {name!r}")
        started = time.monotonic()
        space = await anyio.to_thread.run_sync(_Workspace.create, code, files or {})
        try:
            return await self._run(space, [filename, *args], collect, started)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(space.close)

    async def _run(
        self, space: _Workspace, argv: list[str], collect: Sequence[str], started: float
    ) -> SandboxResult:
        limits = self._limits
        config = {
            "channel_fd": space.child_channel.fileno(),
            "log_fd": space.log.fileno(),
            "limits": limits.model_dump(exclude={"timeout", "output_limit"}),
            "audit": self._audit,
            "parent_net_ns": _net_namespace(),
        }
        command = [self._python, "-I", "-S", "-B", "-u", "-X", "utf8", "-c", _bootstrap()]
        try:
            process = await anyio.open_process(
                [*command, json.dumps(config), *argv],
                stdin=space.program,
                stdout=space.stdout,
                stderr=space.stderr,
                cwd=space.workdir,
                env=_environment(space.workdir),
                start_new_session=True,
                pass_fds=(space.child_channel.fileno(), space.log.fileno()),
            )
        except OSError as exc:
            raise SandboxError(f"could not start {self._python!r}: {exc}") from exc
        space.child_channel.close()  # the child's end: EOF on ours once it is gone
        status: dict[str, Any] | None = None
        timed_out = False
        try:
            with anyio.move_on_after(max(limits.timeout, _STARTUP_SECONDS)):
                status = await anyio.to_thread.run_sync(
                    space.handshake, process.pid, abandon_on_cancel=True
                )
            if status is not None:  # the wall clock starts with the code
                with anyio.move_on_after(limits.timeout) as deadline:
                    await process.wait()
                timed_out = deadline.cancelled_caught
        finally:
            with anyio.CancelScope(shield=True):
                strays = await anyio.to_thread.run_sync(_kill_session, process.pid, space.namespace)
                await process.wait()
        outputs = await anyio.to_thread.run_sync(space.outputs, limits, collect)
        if status is None:
            raise SandboxError(
                f"failed before running the code (exit code {process.returncode}): "
                f"{outputs['stderr'][:2000]!r}"
            )
        return SandboxResult(
            exit_code=None if timed_out else process.returncode,
            timed_out=timed_out,
            stray_processes=strays,
            duration_s=round(time.monotonic() - started, 3),
            protections=SandboxProtections.model_validate(
                {k: v for k, v in status.items() if k != "net_ns"}
            ),
            **outputs,
        )


@cache
def _bootstrap() -> str:
    return Path(__file__).with_name("sandbox_bootstrap.py").read_text(encoding="utf-8")


def _environment(workdir: str) -> dict[str, str]:
    """All the code gets: nothing of ours (no keys, no tokens)."""
    return {"PATH": os.defpath, "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}


def _net_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


@dataclass(slots=True)
class _Workspace:
    """The run's directory, files and channel; blocking methods run in worker threads."""

    directory: tempfile.TemporaryDirectory[str]
    workdir: str
    program: IO[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    log: IO[bytes]
    channel: socket.socket
    child_channel: socket.socket
    namespace: tuple[int, int] | None = None
    _namespace_fd: int | None = None
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, code: str, files: Mapping[str, str | bytes]) -> _Workspace:
        with contextlib.ExitStack() as undo:  # on success everything passes to close()
            directory = tempfile.TemporaryDirectory(prefix="gymbus-sandbox-")
            undo.callback(directory.cleanup)
            workdir = os.path.realpath(directory.name)
            for name, content in files.items():
                data = content.encode("utf-8") if isinstance(content, str) else content
                Path(workdir, name).write_bytes(data)
            # the program lives outside the directory, where the code cannot see it
            program = undo.enter_context(tempfile.TemporaryFile())
            program.write(code.encode("utf-8", errors="surrogatepass"))
            program.seek(0)
            stdout, stderr = (
                undo.enter_context(open(os.path.join(workdir, name), "w+b"))
                for name in _OUTPUT_FILES
            )
            log = undo.enter_context(tempfile.TemporaryFile())
            channel, child_channel = socket.socketpair()
            undo.enter_context(channel)
            undo.enter_context(child_channel)
            undo.pop_all()
        return cls(directory, workdir, program, stdout, stderr, log, channel, child_channel)

    def handshake(self, pid: int) -> dict[str, Any] | None:
        """Wait for the child's status line; hold its network namespace (so its number
        cannot be reused before the final kill) and let it run. ``None``: it never
        reported (it died while starting)."""
        data = b""
        try:
            while b"\n" not in data:
                chunk = self.channel.recv(4096)
                if not chunk:
                    return None
                data += chunk
            status: dict[str, Any] = json.loads(data.split(b"\n", 1)[0])
            with self.lock:  # the run may have been given up meanwhile: see close()
                if self.closed:
                    return None
                if status.get("net_ns") is not None:
                    self._hold_namespace(pid, status["net_ns"])
                self.channel.sendall(b"go")
        except (OSError, ValueError):
            return None
        return status

    def _hold_namespace(self, pid: int, inode: int) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            held = os.fstat(fd)
            if held.st_ino == inode:
                self._namespace_fd, self.namespace = fd, (held.st_dev, held.st_ino)
            else:
                os.close(fd)

    def outputs(self, limits: SandboxLimits, collect: Sequence[str]) -> dict[str, Any]:
        """The heads of stdout and stderr (read through our own descriptors: the code may
        have replaced the names), their sizes, the refusals and the collected files."""
        fields: dict[str, Any] = {}
        for name, stream in (("stdout", self.stdout), ("stderr", self.stderr)):
            size = os.fstat(stream.fileno()).st_size
            head = os.pread(stream.fileno(), min(limits.output_limit, size), 0)
            fields[name] = head.decode("utf-8", "replace")
            fields[f"{name}_bytes"] = size
            fields[f"{name}_truncated"] = size > len(head)
        refused: dict[str, None] = {}
        for line in os.pread(self.log.fileno(), _LOG_LIMIT, 0).splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                refused[str(json.loads(line)["refused"])] = None
        fields["refused"] = tuple(refused)
        fields["files"] = {}
        for name in collect:  # regular files with one link: never a link to a file outside
            try:
                fd = os.open(os.path.join(self.workdir, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            with open(fd, "rb") as f:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    fields["files"][name] = f.read(limits.file_bytes)
        return fields

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for stream in (self.program, self.stdout, self.stderr, self.log):
                stream.close()
            self.channel.close()
            self.child_channel.close()
            if self._namespace_fd is not None:
                os.close(self._namespace_fd)
                self._namespace_fd = None
        self.directory.cleanup()


def _kill_session(leader: int, namespace: tuple[int, int] | None) -> int:
    """SIGKILL the sandbox's process group, its session and the processes of its network
    namespace, until none is left; returns how many besides ``leader`` were running."""
    strays: set[int] = set()
    for attempt in range(100):
        found = _processes_of(leader, namespace)  # counted before the group kill
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
        if not found and attempt:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        strays.update(found)
        time.sleep(0.002)
    strays.discard(leader)
    return len(strays)


def _processes_of(session: int, namespace: tuple[int, int] | None) -> list[int]:
    """Live (not zombie) processes in ``session`` or the network namespace."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            state, group, sid = fields[0], int(fields[2]), int(fields[3])
            ours = session in (sid, group)
            if not ours and namespace is not None:
                info = os.stat(f"/proc/{entry}/ns/net")
                ours = (info.st_dev, info.st_ino) == namespace
        except (OSError, IndexError, ValueError):
            continue
        if ours and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found
