"""``python_exec``: a tool an environment can give the model to run Python in the sandbox.

Each call runs the code in a fresh :class:`~gymbus.envs.sandbox.Sandbox` (nothing carries
over between calls) and returns a text the model reads: how the run ended, its stdout and
stderr (cut at the output limit, with a note saying so) and what the sandbox refused.

Whose fault: code that crashes, loops, floods or is refused is a normal tool result
describing it — the model sees it and can try again. A sandbox that cannot start raises
:class:`~gymbus.runtime.errors.ToolError`: an infrastructure failure, kind ``tool``.
"""

from __future__ import annotations

from gymbus.envs.sandbox import Sandbox, SandboxError, SandboxLimits, SandboxResult
from gymbus.runtime.errors import ToolError
from gymbus.runtime.tools import FunctionTool, ToolSpec

__all__ = ["TOOL_LIMITS", "describe_run", "python_exec_tool"]

TOOL_LIMITS = SandboxLimits(timeout=10.0, cpu_seconds=10, output_limit=8 * 2**10)
"""The default limits of ``python_exec``: 8 KiB of each output stream keeps the model's
context small."""

_MAX_REFUSALS_SHOWN = 5


def python_exec_tool(sandbox: Sandbox | None = None, *, name: str = "python_exec") -> FunctionTool:
    """The ``python_exec(code)`` tool over ``sandbox`` (default: one with
    :data:`TOOL_LIMITS`)."""
    sandbox = sandbox or Sandbox(TOOL_LIMITS)
    limits = sandbox.limits

    async def python_exec(code: str) -> str:
        try:
            result = await sandbox.run(code)
        except SandboxError as exc:
            raise ToolError(f"{name}: sandbox {exc}") from exc
        return describe_run(result)

    description = (
        "Run Python 3 code (standard library only) in a fresh sandbox and get back how it "
        "ended, its stdout and its stderr. Each call starts from scratch: no variables or "
        "files carry over. There is no network and no access to files outside the "
        "sandbox's own temporary directory. Limits: "
        f"{limits.timeout:g} s wall clock, {limits.cpu_seconds} s CPU, "
        f"{limits.memory_bytes // 2**20} MiB memory, the first "
        f"{limits.output_limit:,} bytes of each output. print() what you want to see."
    )
    spec = ToolSpec(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python program."}},
            "required": ["code"],
            "additionalProperties": False,
        },
    )
    return FunctionTool(python_exec, spec)


def describe_run(result: SandboxResult) -> str:
    """The tool's output: how the run ended, then each output stream and the notes."""
    parts = [f"status: {result.outcome}"]
    streams = (
        ("stdout", result.stdout, result.stdout_bytes, result.stdout_truncated),
        ("stderr", result.stderr, result.stderr_bytes, result.stderr_truncated),
    )
    for label, text, size, truncated in streams:
        if size:
            parts.append(f"{label}:\n{text.rstrip(chr(10))}")
        if truncated:
            parts.append(f"[{label} truncated: {size:,} bytes written, the start is shown]")
    if result.stdout_bytes == result.stderr_bytes == 0:
        parts.append("(no output)")
    if result.refused:
        shown = "; ".join(result.refused[:_MAX_REFUSALS_SHOWN])
        more = len(result.refused) - _MAX_REFUSALS_SHOWN
        parts.append(f"refused by the sandbox: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    if result.stray_processes:
        parts.append(f"[{result.stray_processes} process(es) left running were killed]")
    return "\n".join(parts)
