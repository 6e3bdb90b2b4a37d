"""The child side of :mod:`gymbus.envs.sandbox`: the first code the sandboxed interpreter runs.

The parent starts ``python -I -S -B -u -X utf8 -c <this source> <config> <filename> <args…>``
with the untrusted program on stdin. This reads the program, enters new user and network
namespaces where the kernel allows, sets the resource limits, installs the audit hook,
reports on the channel what is in force, waits for the parent's go (it holds the network
namespace by then) and runs the program as ``__main__``. Standard library only: the child
cannot import gymbus.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import traceback
import types
from collections.abc import Callable
from contextlib import suppress
from typing import Any, NoReturn

__all__ = ["main"]

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# opens that may create or change a file
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"})
EXTRA_READ_ROOTS = ("/usr/share/zoneinfo",)
# events whose path arguments (by position) must stay inside the working directory
PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (0, 1),
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.removexattr": (0,),
    "os.rename": (0, 1),
    "os.rmdir": (0,),
    "os.setxattr": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
    "sqlite3.connect": (0,),
}
# a new program would run without the hook; ctypes writes memory behind its back
SPAWN_EVENTS = frozenset(
    {"os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile", "subprocess.Popen"}
    | {"_posixsubprocess.fork_exec"}
)
# limits are final; the heap walk would reach the hook's state
REFUSED_EVENTS = frozenset(
    {"resource.setrlimit", "resource.prlimit", "gc.get_objects", "gc.get_referrers"}
    | {"gc.get_referents", "sqlite3.enable_load_extension", "sqlite3.load_extension"}
)
# this file's functions: left out of the tracebacks the program's errors print
OWN_FRAMES = frozenset(
    {"<module>", "main", "run_program", "hook", "refuse", "inside", "under", "fork_exec"}
)
HOOK_LOG_LINES = 50  # refusals logged per process; the rest still raise


def unshare_namespaces() -> tuple[bool, bool]:
    """Enter a new user and network namespace, else a network namespace alone.
    Returns (user namespace entered, network namespace entered)."""
    if not sys.platform.startswith("linux"):
        return False, False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return False, False
    entered = (False, False)
    for flags in (CLONE_NEWUSER | CLONE_NEWNET, CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            entered = (bool(flags & CLONE_NEWUSER), True)
            break
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith("ctypes.")]:
        del sys.modules[name]  # so that the program's own import meets the audit hook
    return entered


def tasks_of(uid: int) -> int:
    """Threads of real user ``uid`` on the machine: what RLIMIT_NPROC counts for it."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


def set_limits(limits: dict[str, int], nproc: int) -> dict[str, int]:
    """Lower the rlimits (never above a hard limit already in force); returns those set."""
    import resource

    cpu = limits["cpu_seconds"]
    wanted = {
        "cpu": (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit
        "memory": (resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"]),
        "file_size": (resource.RLIMIT_FSIZE, limits["file_bytes"], limits["file_bytes"]),
        "open_files": (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
        "processes": (resource.RLIMIT_NPROC, nproc, nproc),
        "core": (resource.RLIMIT_CORE, 0, 0),
    }
    applied = {}
    for name, (which, soft, hard) in wanted.items():
        current = resource.getrlimit(which)[1]
        if current != resource.RLIM_INFINITY:
            hard = min(hard, current)
        try:
            resource.setrlimit(which, (min(soft, hard), hard))
        except (ValueError, OSError):  # not on this platform (RLIMIT_AS on macOS): unlisted
            continue
        applied[name] = min(soft, hard)
    return applied


def audit_native_spawn() -> None:
    """``_posixsubprocess.fork_exec`` (what ``subprocess`` and ``multiprocessing`` use)
    starts programs without an audit event: give it one. Before the hook is installed, so
    ``import _posixsubprocess`` finds this module already loaded."""
    try:
        import _posixsubprocess
    except ImportError:
        return
    original = _posixsubprocess.fork_exec

    def fork_exec(*args: Any) -> int:
        sys.audit("_posixsubprocess.fork_exec", args[0] if args else None)
        return original(*args)

    vars(_posixsubprocess)["fork_exec"] = fork_exec


def make_hook(
    workdir: str, read_roots: tuple[str, ...], tokens: int, budget: int, log_fd: int
) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook. Every callable it uses is bound here, so a program that patches
    ``os`` later does not change what the hook sees (best effort all the same)."""
    realpath, join, dirname = os.path.realpath, os.path.join, os.path.dirname
    fsdecode, isabs, isdir = os.fsdecode, os.path.isabs, os.path.isdir
    read, write, getsid, dumps = os.read, os.write, os.getsid, json.dumps
    session = os.getsid(0)
    own = (workdir,)
    logged = [0]

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == root or path.startswith(root + "/") for root in roots)

    def inside(path: object, roots: tuple[str, ...]) -> bool:
        """``path`` resolves under ``roots`` — relative paths from the current directory
        and from the working directory both, since ``dir_fd`` may be any directory in it."""
        if isinstance(path, int):
            return True  # an open file descriptor: it was checked when it was opened
        try:
            text = fsdecode(path)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        if "\0" in text:
            return False
        if text.startswith("file:"):  # an SQLite URI
            text = text.removeprefix("file:").split("?", 1)[0] or "."
        if not isabs(text) and not under(realpath(join(workdir, text)), roots):
            return False
        return under(realpath(text), roots)

    def refuse(event: str, detail: object) -> NoReturn:
        text = f"{event} {detail!r}"[:300]
        if logged[0] < HOOK_LOG_LINES:
            logged[0] += 1
            with suppress(OSError):
                write(log_fd, (dumps({"refused": text}) + "\n").encode())
        raise PermissionError(f"refused by the sandbox: {text}")

    def ours(pid: int) -> bool:
        try:
            return bool(getsid(pid) == session)
        except OSError:
            return False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, flags = args[0], args[2]
            if path is None or isinstance(path, int) or inside(path, own):
                return
            real = realpath(fsdecode(path))
            if real in DEVICES:
                return
            if not flags & WRITE_FLAGS and inside(path, read_roots) and not isdir(real):
                return  # reading a file of the standard library (imports, data files)
            refuse(event, path)
        elif event in ("os.listdir", "os.scandir"):
            if args[0] is not None and not inside(args[0], own + read_roots):
                refuse(event, args[0])
        elif event == "os.chdir":
            if not inside(args[0], own):
                refuse(event, args[0])
        elif event in PATH_EVENTS:
            for index in PATH_EVENTS[event]:
                if not inside(args[index], own):
                    refuse(event, args[index])
        elif event == "os.symlink":
            target, link = args[0], args[1]
            where = dirname(realpath(join(workdir, fsdecode(link))))
            if not inside(link, own) or not inside(join(where, fsdecode(target)), own):
                refuse(event, (target, link))
        elif event.startswith("socket."):
            if event == "socket.__new__" and args[1] == 1:  # AF_UNIX: socketpair()
                return
            on_socket = bool(args) and type(args[0]).__name__ == "socket"
            refuse(event, args[1:] if on_socket else args)
        elif event == "import" and args[0] == "_posixsubprocess":
            refuse(event, args[0])  # a second copy, without the audit event above
        elif event in SPAWN_EVENTS or event.startswith("ctypes.") or event in REFUSED_EVENTS:
            refuse(event, args[0] if args else "")
        elif event in ("os.fork", "os.forkpty"):
            try:
                token = read(tokens, 1)
            except OSError:
                token = b""
            if not token:
                refuse(event, f"process budget of {budget} used up")
        elif event in ("os.kill", "os.killpg"):
            target = args[0]  # a process, or with a minus sign (or killpg) a group
            if target == -1 or (target != 0 and not ours(abs(target))):
                refuse(event, target)

    return hook


def run_program(source: bytes, filename: str) -> None:
    """Run ``source`` as the ``__main__`` module; an uncaught exception prints its
    traceback without this file's frames and exits with status 1."""
    text = source.decode("utf-8", errors="replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType("__main__")
    module.__file__ = filename
    sys.modules["__main__"] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        try:
            print_traceback(exc)
        except BaseException:
            sys.__excepthook__(type(exc), exc, exc.__traceback__)
        sys.exit(1)


def print_traceback(exc: BaseException) -> None:
    """Print ``exc`` as Python would, without the frames of this file."""
    report = traceback.TracebackException.from_exception(exc)
    pending, seen = [report], set()
    while pending:
        part = pending.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        frames = [f for f in part.stack if f.filename != "<string>" or f.name not in OWN_FRAMES]
        part.stack = traceback.StackSummary.from_list(frames)
        pending.extend(p for p in (part.__cause__, part.__context__) if p is not None)
        pending.extend(getattr(part, "exceptions", None) or ())
    sys.stderr.write("".join(report.format()))


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.argv = sys.argv[2:]  # [filename, *args]
    channel, log_fd = config["channel_fd"], config["log_fd"]
    source = sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    was_root = hasattr(os, "geteuid") and os.geteuid() == 0
    user_ns, _ = unshare_namespaces()
    try:
        net_ns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        net_ns = None
    isolated = net_ns is not None and net_ns != config["parent_net_ns"]
    limits = config["limits"]
    budget = limits["max_processes"]
    # RLIMIT_NPROC counts a user's threads machine-wide, or within a new user namespace
    # only its own; the kernel never applies it to uid 0, in a user namespace or not
    nproc = budget + 1 if user_ns or was_root else tasks_of(os.getuid()) + budget + 1
    tokens_read, tokens_write = os.pipe()
    os.write(tokens_write, b"." * budget)
    os.close(tokens_write)
    applied = set_limits(limits, nproc)

    workdir = os.path.realpath(os.getcwd())
    roots = [os.path.realpath(p) for p in (*sys.path, *EXTRA_READ_ROOTS) if p]
    read_roots = tuple(r for r in roots if os.path.exists(r) and r != "/")
    if config["audit"]:
        audit_native_spawn()
        sys.addaudithook(make_hook(workdir, read_roots, tokens_read, budget, log_fd))
    status = {
        "network_isolated": isolated,
        "user_namespace": user_ns,
        "nproc_enforced": not was_root and "processes" in applied,
        "audit_hook": bool(config["audit"]),
        "limits": applied,
        "net_ns": net_ns if isolated else None,
    }
    os.write(channel, (json.dumps(status) + "\n").encode())
    go = os.read(channel, 16)
    os.close(channel)
    if go != b"go":  # the parent is gone or refused: run nothing
        os._exit(125)
    del config, status, channel, go
    run_program(source, sys.argv[0])


if __name__ == "__main__":
    main()
