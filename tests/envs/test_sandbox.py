"""The sandbox against what untrusted code does: each attack is contained and reported.

Limits are tight and timeouts short so that the hostile cases (a fork bomb, a memory hog)
stay harmless on a small shared machine; every test that starts processes checks that
none is left running afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest

from gymbus.envs.sandbox import Sandbox, SandboxError, SandboxLimits, SandboxResult

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
]

TIGHT = SandboxLimits(
    timeout=5.0,
    cpu_seconds=2,
    memory_bytes=256 * 2**20,
    file_bytes=2**20,
    open_files=32,
    max_processes=8,
    output_limit=4096,
)


def sandbox(audit: bool = True, **limits: object) -> Sandbox:
    return Sandbox(TIGHT.model_copy(update=limits), audit=audit)


def running_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (forks keep their parent's)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


async def run_marked(box: Sandbox, code: str) -> tuple[SandboxResult, str]:
    marker = f"marker-{uuid.uuid4().hex}"
    result = await box.run(code, args=[marker])
    return result, marker


@pytest.fixture(scope="module")
def protections() -> dict[str, object]:
    """What this machine gives the sandbox (namespaces, NPROC)."""
    result = anyio.run(Sandbox().run, "pass")
    return result.protections.model_dump()


async def test_code_runs_in_a_fresh_directory_that_is_deleted_after() -> None:
    code = (
        "import json, os, sys\n"
        "print(json.dumps([os.getcwd(), sorted(os.listdir('.')), sys.argv,"
        " open('data.txt').read()]))\n"
    )
    result = await sandbox().run(code, args=["a", "b"], files={"data.txt": "hello"})
    assert result.exit_code == 0, result.stderr
    cwd, listing, argv, data = json.loads(result.stdout)
    assert cwd != os.getcwd()
    assert Path(cwd).name.startswith("gymbus-sandbox-")
    assert not await anyio.Path(cwd).exists()
    assert listing == ["data.txt", "stderr.txt", "stdout.txt"]
    assert argv == ["main.py", "a", "b"]
    assert data == "hello"
    assert result.protections.audit_hook
    assert result.protections.limits["memory"] == TIGHT.memory_bytes
    assert result.protections.limits["core"] == 0


async def test_secrets_in_our_environment_do_not_reach_the_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("GYMBUS_CANARY_SECRET", canary)
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    code = (
        "import os\n"
        "print(sorted(os.environ.items()))\n"
        "for path in ('/proc/self/environ', f'/proc/{os.getppid()}/environ'):\n"
        "    try:\n"
        "        print(open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    result = await sandbox().run(code)
    assert canary not in result.stdout + result.stderr
    names = [name for name, _ in eval(result.stdout.splitlines()[0])]
    assert names == ["HOME", "LC_ALL", "PATH", "TMPDIR"]
    assert result.stdout.count("PermissionError refused by the sandbox: open") == 2
    # without the audit hook the code reads its own environment: the variables are gone
    unhooked = await sandbox(audit=False).run("print(open('/proc/self/environ', 'rb').read())")
    assert b"PATH=" in eval(unhooked.stdout)
    assert canary not in unhooked.stdout


async def test_a_fork_bomb_is_contained_and_leaves_nothing_running(
    protections: dict[str, object],
) -> None:
    started = time.perf_counter()
    result, marker = await run_marked(
        sandbox(timeout=3.0), "import os\nwhile True:\n    os.fork()\n"
    )
    assert time.perf_counter() - started < 5.0
    assert running_with(marker) == []
    if protections["audit_hook"]:
        assert any("os.fork" in r and "process budget of 8" in r for r in result.refused)
        assert result.exit_code == 1
    assert result.exit_code != 0


async def test_nproc_alone_contains_a_fork_bomb_where_the_kernel_applies_it(
    protections: dict[str, object],
) -> None:
    if not protections["nproc_enforced"]:
        pytest.skip("uid 0: RLIMIT_NPROC does not apply (the fork budget and the kill do)")
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result, marker = await run_marked(sandbox(audit=False, timeout=1.0), code)
    assert result.timed_out
    assert running_with(marker) == []


async def test_processes_left_running_are_killed_even_in_a_new_session(
    protections: dict[str, object],
) -> None:
    code = (
        "import os, sys, time\n"
        "for i in range(3):\n"
        "    if os.fork() == 0:\n"
        "        if i == 2:\n"
        "            os.setsid()  # leaves the process group and the session\n"
        "        open(f'ready-{i}', 'w').close()\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "while len([f for f in os.listdir('.') if f.startswith('ready-')]) < 3:\n"
        "    time.sleep(0.01)\n"
    )
    result, marker = await run_marked(sandbox(), code)
    assert result.exit_code == 0, result.stderr
    left = running_with(marker)
    if protections["network_isolated"]:  # found through its network namespace
        assert result.stray_processes == 3
        assert left == []
    else:  # a new session escapes the session kill: documented
        assert result.stray_processes == 2
        for pid in left:
            os.kill(pid, signal.SIGKILL)


async def test_an_infinite_loop_is_killed_at_the_cpu_limit() -> None:
    result = await sandbox(cpu_seconds=1, timeout=10.0).run("while True:\n    pass\n")
    assert result.exit_code == -signal.SIGXCPU
    assert result.signal == "SIGXCPU"
    assert not result.timed_out
    assert result.outcome == "killed by SIGXCPU: CPU time limit (1 s)"
    assert result.duration_s < 5.0


async def test_sleeping_code_is_stopped_by_the_wall_clock_without_blocking_the_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    code = "import time\nprint('started')\ntime.sleep(30)\n"
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        result, marker = await run_marked(sandbox(timeout=0.6), code)
        tg.cancel_scope.cancel()
    assert result.timed_out
    assert result.exit_code is None
    assert result.outcome == "stopped at the wall-clock timeout"
    assert result.stdout == "started\n"  # unbuffered: what was printed before the kill
    assert result.duration_s < 3.0
    assert ticks >= 20  # the event loop kept running meanwhile
    assert running_with(marker) == []


async def test_a_cancelled_run_kills_its_processes() -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    with anyio.move_on_after(0.5):
        await sandbox(timeout=30.0).run("import time\ntime.sleep(30)\n", args=[marker])
    assert running_with(marker) == []


async def test_a_memory_hog_gets_a_memory_error() -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(2**24))\n"
    result = await sandbox().run(code)
    assert result.exit_code == 1
    assert result.stderr.rstrip().endswith("MemoryError")
    result = await sandbox().run("x = bytearray(2**32)\n")
    assert "MemoryError" in result.stderr


async def test_huge_output_is_capped_and_the_truncation_reported() -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    result = await sandbox().run(code)
    assert result.stdout == "x" * 4096
    assert result.stdout_truncated
    assert result.stdout_bytes == 2**20  # the file-size limit stopped the writes
    assert "OSError: [Errno 27] File too large" in result.stderr
    assert not result.stderr_truncated


async def test_reading_outside_the_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("canary-read")
    code = (
        "import json, os, sys\n"
        "def attempt(action):\n"
        "    try:\n"
        "        action()\n"
        "        print('allowed')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
        f"attempt(lambda: print(open({str(secret)!r}).read()))\n"
        "attempt(lambda: print(open('/etc/hostname').read()))\n"
        "attempt(lambda: print(os.listdir('/')))\n"
        f"attempt(lambda: os.symlink({str(secret)!r}, 'link'))\n"
        "attempt(lambda: os.chdir('/'))\n"
        f"attempt(lambda: open(os.path.relpath({str(secret)!r})).read())\n"
        f"attempt(lambda: __import__('sqlite3').connect({str(secret)!r}))\n"
        "attempt(lambda: json.dumps({}))  # the standard library still loads\n"
    )
    result = await sandbox().run(code)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["PermissionError"] * 7 + ["allowed"]
    assert "canary-read" not in result.stdout
    assert f"open {str(secret)!r}" in result.refused
    assert "open '/etc/hostname'" in result.refused


async def test_writes_are_confined_to_the_directory_and_the_file_size_limit(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "written.txt"
    code = (
        "try:\n"
        f"    open({str(outside)!r}, 'w').write('escaped')\n"
        "except PermissionError as exc:\n"
        "    print('refused')\n"
        "with open('big.bin', 'wb') as f:\n"
        "    f.write(b'x' * 2**21)\n"
    )
    result = await sandbox().run(code)
    assert not outside.exists()
    assert result.stdout == "refused\n"
    assert "OSError: [Errno 27] File too large" in result.stderr


async def test_open_files_are_limited() -> None:
    code = "files = [open(f'f{i}', 'w') for i in range(100)]\n"
    result = await sandbox().run(code)
    assert "OSError: [Errno 24] Too many open files" in result.stderr


async def test_the_code_cannot_raise_its_limits(protections: dict[str, object]) -> None:
    code = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (2**40, 2**40))\n"
    result = await sandbox().run(code)
    assert "refused by the sandbox: resource.setrlimit" in result.stderr
    if protections["user_namespace"] or os.geteuid() != 0:  # the kernel says no as well
        result = await sandbox(audit=False).run(code)
        assert "ValueError: not allowed to raise maximum limit" in result.stderr


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


def connect_code(port: int) -> str:
    return (
        "import socket\n"
        "try:\n"
        f"    socket.socket().connect(('127.0.0.1', {port}))\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )


async def test_the_network_namespace_stops_connections(protections: dict[str, object]) -> None:
    if not protections["network_isolated"]:
        pytest.skip("no network namespace on this machine: the audit hook is the only guard")
    listener = Listener()
    # the audit hook off, so that only the namespace stands between the code and us
    result = await sandbox(audit=False).run(connect_code(listener.port))
    assert result.stdout.startswith("OSError [Errno 101] Network is unreachable"), result.stdout
    assert listener.connections() == 0
    listener.sock.close()


async def test_the_audit_hook_refuses_sockets() -> None:
    listener = Listener()
    result = await sandbox().run(connect_code(listener.port))
    assert result.stdout.startswith("PermissionError refused by the sandbox: socket.__new__")
    assert any(r.startswith("socket.__new__") for r in result.refused)
    assert listener.connections() == 0
    listener.sock.close()


async def test_new_programs_ctypes_and_signals_to_others_are_refused() -> None:
    attempts = [
        "subprocess.run(['cat', '/etc/hostname'])",
        "os.system('true')",
        "__import__('ctypes').CDLL(None)",
        "os.kill(os.getppid(), 0)",
        "os.kill(-1, 0)",
        "__import__('_posixsubprocess').fork_exec()",
        "sys.modules.pop('_posixsubprocess') and __import__('_posixsubprocess')",
    ]
    code = "import os, subprocess, sys\n" + "".join(
        f"try:\n    {attempt}\nexcept PermissionError:\n    print('refused')\n"
        for attempt in attempts
    )
    code += "os.kill(os.getpid(), 0)  # its own processes it may signal\n"
    result = await sandbox().run(code)
    assert result.stdout == "refused\n" * len(attempts), result.stderr
    assert result.exit_code == 0


async def test_collected_files_are_read_back_but_never_through_links(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("canary-link")
    code = (
        "open('plain.txt', 'w').write('result')\n"
        f"os.symlink({str(secret)!r}, 'symlink.txt')\n"
        f"os.link({str(secret)!r}, 'hardlink.txt')\n"
    )
    names = ["plain.txt", "symlink.txt", "hardlink.txt", "missing.txt"]
    result = await sandbox(audit=False).run("import os\n" + code, collect=names)
    assert result.exit_code == 0, result.stderr
    assert result.files == {"plain.txt": b"result"}


async def test_a_sandbox_that_cannot_start_raises() -> None:
    with pytest.raises(SandboxError, match="could not start '/nonexistent/python'"):
        await Sandbox(python="/nonexistent/python").run("pass")
    with pytest.raises(SandboxError, match="failed before running the code"):
        await Sandbox(python="/bin/false").run("pass")


@pytest.mark.parametrize("name", ["../x", "a/b", "", "stdout.txt"])
async def test_file_names_must_be_plain(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        await sandbox().run("pass", files={name: "x"})
