"""GPU (NVML), CPU and RAM (psutil) samples, stored in SQLite while jobs run; energy per job.

    >>> rows = sample()                      # one dict per GPU; one with gpu fields None without
    >>> sorted(rows[0])[:3]
    ['cpu_percent', 'gpu_index', 'gpu_mem_total_mb']
    >>> db = store.connect(":memory:")
    >>> record(db, job_id=None) >= 1
    True

A machine with no NVIDIA GPU (or no driver) is a normal state: ``gpu_available()`` is False,
samples carry CPU and RAM only, ``energy_wh`` is None and ``status_line()`` says so.

``Sampler(db, job_id, interval_s)`` is a daemon thread that records a sample every
``interval_s`` seconds on its own connection to the same store; ``energy_wh(db, job_id)``
integrates the job's GPU power over time (trapezoids, summed over GPUs).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

from core import store
from core.store import Database
from core.store import samples as sample_rows

GPU_FIELDS = (
    "gpu_index",
    "gpu_name",
    "gpu_util",
    "gpu_mem_used_mb",
    "gpu_mem_total_mb",
    "gpu_temp_c",
    "gpu_power_w",
)
NO_GPU_LINE = "No NVIDIA GPU found (no NVML driver): showing CPU and RAM only."
_MB = 2**20


@lru_cache(maxsize=1)
def _nvml() -> Any | None:
    """The initialised pynvml module, or None when there is no driver or no GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None
        return pynvml
    except Exception:  # no library, no driver, driver/library mismatch ...
        return None


def gpu_available() -> bool:
    """True when NVML (nvidia-ml-py) initialises and sees at least one GPU."""
    return _nvml() is not None


def gpu_count() -> int:
    """NVIDIA GPUs NVML sees (0 without a driver); CUDA_VISIBLE_DEVICES is not applied."""
    nvml = _nvml()
    return 0 if nvml is None else int(nvml.nvmlDeviceGetCount())


def _safe(read: Any) -> Any:
    try:
        return read()
    except Exception:  # a field this GPU does not report (power on some boards, ...)
        return None


def _gpu_rows() -> list[dict[str, Any]]:
    nvml = _nvml()
    if nvml is None:
        return []
    rows = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = _safe(lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h))
        name = _safe(lambda h=handle: nvml.nvmlDeviceGetName(h))
        power_mw = _safe(lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h))
        rows.append(
            {
                "gpu_index": index,
                "gpu_name": name.decode() if isinstance(name, bytes) else name,
                "gpu_util": _safe(
                    lambda h=handle: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
                ),
                "gpu_mem_used_mb": memory.used / _MB if memory is not None else None,
                "gpu_mem_total_mb": memory.total / _MB if memory is not None else None,
                "gpu_temp_c": _safe(
                    lambda h=handle: float(
                        nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
                    )
                ),
                "gpu_power_w": power_mw / 1000 if power_mw is not None else None,
            }
        )
    return rows


_cpu_last: dict[str, float] = {}
_cpu_lock = threading.Lock()
MIN_CPU_INTERVAL_S = 0.5  # psutil's reading over a shorter span is noise (often a false 0%)


def _cpu_percent() -> float:
    """CPU use since the previous reading of this process.

    psutil compares CPU times with its previous call: the first call of a process, and calls
    a few milliseconds apart (two pages refreshing at once), read 0.0. The first reading here
    is taken over 0.1 s, and a reading asked for within 0.5 s of the last repeats it.
    """
    with _cpu_lock:
        now = time.monotonic()
        if not _cpu_last:
            value = psutil.cpu_percent(interval=0.1)
        elif now - _cpu_last["at"] < MIN_CPU_INTERVAL_S:
            return _cpu_last["value"]
        else:
            value = psutil.cpu_percent(interval=None)
        _cpu_last.update(at=time.monotonic(), value=value)
        return value


def sample() -> list[dict[str, Any]]:
    """One reading per GPU (util %, memory MB, temperature °C, power W) plus CPU % and RAM MB.

    Without a GPU: a single dict whose ``gpu_*`` fields are None.
    """
    memory = psutil.virtual_memory()
    host = {
        "ts": time.time(),
        "cpu_percent": _cpu_percent(),
        "ram_used_mb": (memory.total - memory.available) / _MB,
        "ram_total_mb": memory.total / _MB,
    }
    gpus = _gpu_rows() or [dict.fromkeys(GPU_FIELDS)]
    return [{**host, **gpu} for gpu in gpus]


def record(db: Database, job_id: int | None = None) -> int:
    """Take a sample and store it in ``monitor_samples`` (tagged with ``job_id``); rows written."""
    return sample_rows.insert(db, [{**row, "job_id": job_id} for row in sample()])


class Sampler:
    """A daemon thread recording a sample every ``interval_s`` seconds until ``stop()``.

        >>> sampler = Sampler(db, job_id=3, interval_s=2.0).start()   # doctest: +SKIP
        >>> sampler.stop()                                            # doctest: +SKIP

    It writes through its own connection to the same store file (one connection per thread).
    """

    def __init__(self, db: Database, job_id: int | None, interval_s: float = 2.0):
        self.db, self.job_id, self.interval_s = db, job_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="finboard-sampler", daemon=True)
        self.errors = 0

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        path = store.file_of(self.db)
        db = store.connect(path) if path else self.db
        try:
            while not self._stop.is_set():
                try:
                    record(db, self.job_id)
                except Exception:  # a busy store or a flaky sensor must not end the job
                    self.errors += 1
                self._stop.wait(self.interval_s)
        finally:
            if db is not self.db:
                db.close()


def energy_wh(db: Database, job_id: int) -> float | None:
    """GPU energy of a job in watt-hours: trapezoids of power over time, summed over GPUs.

    None when the job has no power samples (no NVIDIA GPU, or a board that reports no power).
    """
    rows = sample_rows.power_readings(db, job_id)
    if not rows:
        return None
    joules = 0.0
    for (gpu, ts, watts), (next_gpu, next_ts, next_watts) in zip(rows, rows[1:]):
        if gpu == next_gpu:
            joules += (next_ts - ts) * (watts + next_watts) / 2
    return joules / 3600


def status_line() -> str:
    """One line for the UI / CLI: the GPUs seen, or that there are none."""
    rows = _gpu_rows()
    if not rows:
        return NO_GPU_LINE
    names = ", ".join(f"{r['gpu_index']}: {r['gpu_name']}" for r in rows)
    return f"{len(rows)} NVIDIA GPU{'s' if len(rows) > 1 else ''} ({names}): sampling util, memory, temperature and power."


OOM_SHARE = 0.9  # RAM this full at a job's last sample counts as having run out


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer ended in this cgroup (None: unknown)."""
    try:
        text = Path("/sys/fs/cgroup/memory.events").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def ran_out_of_memory(db: Database, job_id: int, kills_before: int | None) -> bool | None:
    """Whether memory ran out while the job ran: the OOM killer's counter moved, or the job's
    last sample shows RAM nearly full. None when neither can tell."""
    kills = oom_kills()
    if kills is not None and kills_before is not None:
        return kills > kills_before
    rows = sample_rows.for_job(db, job_id)
    if not rows or not rows[-1].get("ram_total_mb"):
        return None
    last = rows[-1]
    return last["ram_used_mb"] / last["ram_total_mb"] >= OOM_SHARE
