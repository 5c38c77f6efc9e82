"""Why a job failed, in one readable line: from its exit status and its log, never a traceback.

    >>> failure_reason(-9, "", out_of_memory=True)
    'killed (SIGKILL) by the system when it ran out of memory — try a smaller batch size, a shorter max_seq_length, gradient checkpointing or QLoRA'
    >>> failure_reason(-9, "", out_of_memory=False)
    'killed (SIGKILL) by another program or a person: memory was not short when it stopped'
    >>> failure_reason(1, "Traceback (most recent call last):\\n  File \\"x.py\\", line 1\\n"
    ...                   "ValueError: Bad training config: lora_r must be at least 1\\n")
    'Bad training config: lora_r must be at least 1'

``exit_code`` follows ``subprocess``: a negative number is the signal that ended the process
(-9: SIGKILL); a shell's 128 + N is read the same way. ``None`` means "unknown / still running"
(the caller has only the log, e.g. the exception the job itself caught).
"""

from __future__ import annotations

import re
import signal

MAX_CHARS = 400  # a reason is one line; long messages are cut here

OOM_ADVICE = "try a smaller batch size, a shorter max_seq_length, gradient checkpointing or QLoRA"
SIGKILL_REASONS = {  # did memory run out when it was killed? (None: not known)
    True: f"killed (SIGKILL) by the system when it ran out of memory — {OOM_ADVICE}",
    False: "killed (SIGKILL) by another program or a person: memory was not short when it stopped",
    None: "killed (SIGKILL) by another program, a person or the system's out-of-memory killer; "
    "see the job log",
}
SIGNAL_REASONS = {
    signal.SIGSEGV: "crashed (SIGSEGV, segmentation fault) — see the job log; a driver or "
    "library problem is likely",
    signal.SIGABRT: "aborted (SIGABRT) — a library stopped the process; see the job log",
    signal.SIGTERM: "stopped (SIGTERM) before it could save its state",
    signal.SIGINT: "interrupted (SIGINT)",
    signal.SIGBUS: "crashed (SIGBUS) — often a full disk or a damaged file; see the job log",
}
OOM_PATTERNS = ("CUDA out of memory", "OutOfMemoryError", "MemoryError", "out of memory")
MESSAGE_ONLY = (
    "ModelLoadError",
    "RegistryError",
    "TaskSpecError",
    "AdapterNotAppliedError",
    "GuardConfigError",
)
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


def exit_signal(exit_code: int | None) -> int | None:
    """The signal number that ended a process, from a subprocess or shell exit status."""
    if exit_code is None:
        return None
    if exit_code < 0:
        return -exit_code
    if 128 < exit_code < 128 + 65:
        return exit_code - 128
    return None


def last_exception(log_text: str) -> tuple[str, str] | None:
    """(exception class name, message) of the last traceback in ``log_text``, or None.

    >>> last_exception("Traceback (most recent call last):\\n  File ...\\nKeyError: 'label'")
    ('KeyError', "'label'")
    """
    start = log_text.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    lines = log_text[start:].splitlines()[1:]
    for index, line in enumerate(lines):
        if not line or line[0].isspace():
            continue  # frames, source lines and ^^^ markers are indented
        match = _EXCEPTION_LINE.match(line.strip())
        if not match:
            continue
        name = match.group(1).rsplit(".", 1)[-1]
        message = [match.group(2) or ""]
        for more in lines[index + 1 :]:  # a multi-line message (e.g. DatasetImportError)
            if not more.strip() or more.startswith(("Traceback", "During handling", "The above")):
                break
            message.append(more.strip())
        return name, " ".join(part for part in message if part)
    return None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _out_of_memory(text: str) -> str:
    where = "GPU" if "cuda" in text.lower() else "the machine"
    return f"out of memory on {where} — {OOM_ADVICE}"


def _from_exception(name: str, message: str) -> str:
    if any(p in name or p in message for p in OOM_PATTERNS):
        return _out_of_memory(message)
    if name == "DatasetImportError":
        return f"dataset: {message}"
    if name == "KeyError":
        return f"dataset: column {message} not found"
    if name == "ValueError" and message.startswith("Bad training config"):
        return message
    if name in MESSAGE_ONLY:
        return message or name
    return f"{name}: {message}" if message else name


_ROOT_CAUSE = re.compile(
    r"Root Cause \(first observed failure\):.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S
)


def failed_rank(log_text: str) -> tuple[int, int, str] | None:
    """(rank, exit code, the log before the launcher's report) when torch.distributed's
    launcher stopped a data-parallel job because one rank failed; None otherwise.

    >>> failed_rank("x\\nChildFailedError:\\nRoot Cause (first observed failure):\\n[0]:\\n"
    ...             "  rank      : 1 (local_rank: 1)\\n  exitcode  : -9 (pid: 7)")
    (1, -9, 'x')
    """
    report = log_text.rfind("ChildFailedError")
    if report < 0:
        return None
    found = _ROOT_CAUSE.search(log_text, report)
    if found is None:
        return None
    start = log_text.rfind("Traceback (most recent call last):", 0, report)
    before = log_text[: start if start >= 0 else report].rstrip()
    return int(found.group(1)), int(found.group(2)), before


def failure_reason(exit_code: int | None, log_text: str, out_of_memory: bool | None = None) -> str:
    """A readable one-line reason for a job that ended with ``exit_code`` and wrote ``log_text``.

    ``out_of_memory``: whether memory had run out when the process was killed (from the
    kernel's counter or the job's last memory sample, ``core.monitoring.ran_out_of_memory``),
    so a SIGKILL is not blamed on memory without evidence.

    >>> failure_reason(1, "...\\ntorch.OutOfMemoryError: CUDA out of memory. Tried to ...")
    'out of memory on GPU — try a smaller batch size, a shorter max_seq_length, gradient checkpointing or QLoRA'
    >>> failure_reason(3, "no traceback here")
    'the job process exited with code 3; last log line: no traceback here'
    """
    rank_failure = failed_rank(log_text)
    if rank_failure is not None:  # a data-parallel job: the launcher stopped it for one rank
        rank, code, before = rank_failure
        return _one_line(f"rank {rank}: {failure_reason(code, before, out_of_memory)}")
    number = exit_signal(exit_code)
    if number == signal.SIGKILL:
        return SIGKILL_REASONS[out_of_memory]
    exception = last_exception(log_text)
    if exception is not None:
        return _one_line(_from_exception(*exception))
    tail = [line.strip() for line in log_text.splitlines() if line.strip()][-5:]
    if any(p in line for line in tail for p in OOM_PATTERNS):
        return _one_line(_out_of_memory(" ".join(tail)))
    if number is not None:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return _one_line(SIGNAL_REASONS.get(number, f"killed by {name}; see the job log"))
    last = f"; last log line: {tail[-1]}" if tail else " without writing to its log"
    if exit_code in (None, 0):
        return _one_line(f"the job process ended without recording a result{last}")
    return _one_line(f"the job process exited with code {exit_code}{last}")
