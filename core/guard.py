"""The resource guard: GPU temperature and power limits (a RAM floor on the CPU), held between
optimizer steps by pausing the training or computing its batches in smaller passes.

    >>> limits = Limits(gpus={0: GpuLimits(max_temp_c=80.0, max_power_w=300.0)})
    >>> hot = [{"gpu_index": 0, "gpu_temp_c": 84.0, "gpu_power_w": 200.0}]
    >>> limits.breaches(hot)
    ['GPU 0 at 84 °C (limit 80 °C)']
    >>> limits.cleared([{"gpu_index": 0, "gpu_temp_c": 77.0, "gpu_power_w": 200.0}])  # in band
    False
    >>> limits.cleared([{"gpu_index": 0, "gpu_temp_c": 74.0, "gpu_power_w": 200.0}])
    True

Rules:

- A GPU's limits default to what NVML reports for the device itself: its slowdown temperature
  minus ``temp_margin_c`` and its enforced power limit minus ``power_margin_pct`` per cent
  (``nvml_limits``). ``max_temp_c`` / ``max_power_w`` in ``configs/guard.yaml`` (or a
  ``guard.yaml`` in FINBOARD_HOME, which overrides single keys) replace them: a number for
  every GPU or a mapping {gpu index: value}.
- A CPU run (samples without GPU fields) is held to a floor of free RAM (``min_free_ram_mb``).
- ``Guard.between_steps`` reads the newest samples (a ``Feed``). Over a limit it either waits
  until every reading is back under its limit minus the hysteresis (``action: pause``: nothing
  is saved, the step simply starts later, so the result is the one of an unpaused run), or
  (``action: shrink``) doubles the number of passes each micro-batch is computed in, which
  keeps the effective batch and the update, and pauses only once a pass is one example.
- Every pause, resume and shrink is reported as an event (kind, message, seconds), which a job
  stores and logs; a cancel ends a pause at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from core import monitoring, paths
from core.store import Database
from core.store import samples as sample_rows

ACTIONS = ("pause", "shrink")
GUARD_FILE = "guard.yaml"


class GuardConfigError(ValueError):
    """A guard.yaml that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class GuardSettings:
    """``configs/guard.yaml``, key for key (see the comments there)."""

    max_temp_c: float | dict[int, float] | None = None
    max_power_w: float | dict[int, float] | None = None
    temp_margin_c: float = 5.0
    power_margin_pct: float = 5.0
    temp_hysteresis_c: float = 5.0
    power_hysteresis_w: float = 25.0
    min_free_ram_mb: float = 512.0
    ram_hysteresis_mb: float = 256.0
    action: str = "pause"
    poll_s: float = 2.0
    oom_retries: int = 2
    oom_backoff_s: float = 10.0


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise GuardConfigError(f"{where} must be a number of at least 0, not {value!r}")
    return float(value)


def _per_gpu(value: Any, where: str) -> float | dict[int, float] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            return {int(k): _number(v, f"{where}[{k}]") for k, v in value.items()}
        except (TypeError, ValueError) as exc:
            if isinstance(exc, GuardConfigError):
                raise
            raise GuardConfigError(f"{where}: GPU indices must be whole numbers") from exc
    return _number(value, where)


def parse_settings(raw: dict[str, Any], source: str) -> GuardSettings:
    """Settings from a parsed guard.yaml; GuardConfigError naming ``source`` and the key."""
    known = {item.name for item in fields(GuardSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise GuardConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"{source}: {name}"
        if name in ("max_temp_c", "max_power_w"):
            values[name] = _per_gpu(value, where)
        elif name == "action":
            if value not in ACTIONS:
                raise GuardConfigError(f"{where} must be one of {', '.join(ACTIONS)}")
            values[name] = value
        elif name == "oom_retries":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise GuardConfigError(f"{where} must be a whole number of at least 0")
            values[name] = value
        else:
            values[name] = _number(value, where)
    return replace(GuardSettings(), **values)


def settings_files() -> list[Any]:
    """The guard files read, in order: the repository's defaults, then the home's overrides."""
    return [paths.CONFIGS_DIR / GUARD_FILE, paths.home_dir() / GUARD_FILE]


def load_settings() -> GuardSettings:
    """The guard settings in force: ``configs/guard.yaml`` overlaid by FINBOARD_HOME's."""
    merged: dict[str, Any] = {}
    for path in settings_files():
        if path.is_file():
            raw = paths.read_yaml(path, GuardConfigError, "Guard settings") or {}
            if not isinstance(raw, dict):
                raise GuardConfigError(f"{path}: expected key: value lines")
            parse_settings(raw, str(path))  # each file is checked on its own, naming itself
            merged.update(raw)
    return parse_settings(merged, "guard settings")


# ---------------------------------------------------------------- limits


@dataclass(frozen=True)
class GpuLimits:
    max_temp_c: float | None = None  # None: not limited (the GPU reports no threshold)
    max_power_w: float | None = None
    source: str = "config"  # where the numbers came from, for the monitor page


@dataclass(frozen=True)
class Limits:
    """Limits per GPU index, the RAM floor of CPU runs, and the hystereses."""

    gpus: dict[int, GpuLimits] = field(default_factory=dict)
    min_free_ram_mb: float = 0.0
    temp_hysteresis_c: float = 5.0
    power_hysteresis_w: float = 25.0
    ram_hysteresis_mb: float = 256.0

    def _problems(self, readings: Iterable[dict[str, Any]], slack: bool) -> list[str]:
        """What is over a limit; with ``slack``, what is not yet under it minus the hysteresis."""
        problems = []
        for row in readings:
            if row.get("gpu_index") is None:
                problems += self._ram_problems(row, slack)
                continue
            index = int(row["gpu_index"])
            limit = self.gpus.get(index, GpuLimits())
            checks = (
                ("gpu_temp_c", limit.max_temp_c, self.temp_hysteresis_c, "°C"),
                ("gpu_power_w", limit.max_power_w, self.power_hysteresis_w, "W"),
            )
            for column, ceiling, band, unit in checks:
                value = row.get(column)
                if value is None or ceiling is None:
                    continue
                if value > ceiling - (band if slack else 0.0):
                    problems.append(
                        f"GPU {index} at {value:.0f} {unit} (limit {ceiling:.0f} {unit})"
                    )
        return problems

    def _ram_problems(self, row: dict[str, Any], slack: bool) -> list[str]:
        if not self.min_free_ram_mb or row.get("ram_total_mb") is None:
            return []
        free = row["ram_total_mb"] - row["ram_used_mb"]
        floor = self.min_free_ram_mb + (self.ram_hysteresis_mb if slack else 0.0)
        if free >= floor:
            return []
        return [f"{free:.0f} MB of RAM free (floor {self.min_free_ram_mb:.0f} MB)"]

    def breaches(self, readings: Iterable[dict[str, Any]]) -> list[str]:
        """The readings over a limit, in words (empty: all within limits)."""
        return self._problems(readings, slack=False)

    def cleared(self, readings: list[dict[str, Any]]) -> bool:
        """True when every reading is under its limit minus the hysteresis (resume now)."""
        return bool(readings) and not self._problems(readings, slack=True)


def nvml_limits(settings: GuardSettings, nvml: Any | None = None) -> dict[int, GpuLimits]:
    """Each GPU's default limits from NVML: slowdown temperature minus the margin, enforced
    power limit minus the margin; ``nvml`` is the pynvml module (default: the initialised one,
    none without a driver)."""
    nvml = nvml if nvml is not None else monitoring._nvml()
    if nvml is None:
        return {}
    found = {}
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        slowdown = monitoring._safe(
            lambda h=handle: nvml.nvmlDeviceGetTemperatureThreshold(
                h, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
            )
        )
        power_mw = monitoring._safe(lambda h=handle: nvml.nvmlDeviceGetEnforcedPowerLimit(h))
        found[index] = GpuLimits(
            max_temp_c=float(slowdown) - settings.temp_margin_c if slowdown else None,
            max_power_w=power_mw / 1000 * (1 - settings.power_margin_pct / 100)
            if power_mw
            else None,
            source="NVML minus margin",
        )
    return found


def _configured(value: float | dict[int, float] | None, index: int) -> float | None:
    return value.get(index) if isinstance(value, dict) else value


def limits_from(settings: GuardSettings, nvml: Any | None = None) -> Limits:
    """The limits in force: NVML's defaults per GPU, replaced where the settings give a value."""
    gpus = {}
    for index, default in nvml_limits(settings, nvml).items():
        temp = _configured(settings.max_temp_c, index)
        power = _configured(settings.max_power_w, index)
        gpus[index] = GpuLimits(
            max_temp_c=temp if temp is not None else default.max_temp_c,
            max_power_w=power if power is not None else default.max_power_w,
            source="config" if temp is not None or power is not None else default.source,
        )
    for name in ("max_temp_c", "max_power_w"):  # GPUs named in the file but not seen by NVML
        value = getattr(settings, name)
        for index in value if isinstance(value, dict) else ():
            gpus.setdefault(index, GpuLimits(source="config"))
            gpus[index] = replace(gpus[index], **{name: value[index]})
    return Limits(
        gpus=gpus,
        min_free_ram_mb=settings.min_free_ram_mb,
        temp_hysteresis_c=settings.temp_hysteresis_c,
        power_hysteresis_w=settings.power_hysteresis_w,
        ram_hysteresis_mb=settings.ram_hysteresis_mb,
    )


def limits_table(limits: Limits) -> list[dict[str, Any]]:
    """One row per GPU (or one for the CPU run's RAM floor) for the monitor page and the CLI."""
    rows = [
        {
            "gpu": index,
            "max_temp_c": limit.max_temp_c,
            "max_power_w": limit.max_power_w,
            "from": limit.source,
        }
        for index, limit in sorted(limits.gpus.items())
    ]
    return rows


# ---------------------------------------------------------------- the feed and the guard


class Feed(Protocol):
    """Where the guard reads the newest samples: one dict per GPU (monitoring's fields)."""

    def latest(self) -> list[dict[str, Any]]: ...


STALE_S = 30.0  # a sample older than this says nothing about now (the sampler writes every 2 s)


class StoreFeed:
    """The newest samples the job's ``monitoring.Sampler`` stored, of the GPUs it was given;
    none when the newest are older than ``max_age_s`` (the sampler stopped)."""

    def __init__(
        self,
        db: Database,
        job_id: int,
        gpu_ids: list[int] | None = None,
        max_age_s: float = STALE_S,
    ) -> None:
        self.db, self.job_id, self.max_age_s = db, job_id, max_age_s
        self.gpu_ids = gpu_ids if gpu_ids is not None else visible_gpus()

    def latest(self) -> list[dict[str, Any]]:
        oldest = time.time() - self.max_age_s
        rows = [
            row
            for row in sample_rows.latest_for_job(self.db, self.job_id)
            if (row.get("ts") or 0.0) >= oldest
        ]
        if not self.gpu_ids:
            return rows
        return [row for row in rows if row.get("gpu_index") in self.gpu_ids]


def visible_gpus() -> list[int]:
    """The NVML indices in CUDA_VISIBLE_DEVICES ([] when unset or not plain indices)."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return [int(part) for part in parts] if parts and all(p.isdigit() for p in parts) else []


Report = Callable[[str, str, float | None], None]  # (kind, message, seconds)


class Guard:
    """Holds a training to ``limits`` between its optimizer steps (see the module's rules).

    ``sleep`` and ``clock`` are injectable so tests pause without waiting; ``should_stop`` ends
    a pause (a cancel). ``paused_s`` is the time this guard held the training.
    """

    def __init__(
        self,
        feed: Feed,
        limits: Limits,
        action: str = "pause",
        poll_s: float = 2.0,
        report: Report | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"guard action must be one of {', '.join(ACTIONS)}, not {action!r}")
        self.feed, self.limits, self.action, self.poll_s = feed, limits, action, poll_s
        self.report = report or (lambda kind, message, seconds: None)
        self.should_stop, self.sleep, self.clock = should_stop, sleep, clock
        self.paused_s = 0.0
        self.pauses = 0
        self._acted_on: float | None = None  # the newest sample ts a shrink answered

    def between_steps(self, step: int, split: int, max_split: int) -> int:
        """Before optimizer step ``step + 1``: wait out a breach, or return a larger ``split``
        (passes per micro-batch, at most ``max_split``); the split to use from now on."""
        readings = self.feed.latest()
        problems = self.limits.breaches(readings)
        if not problems:
            return split
        newest = max((row.get("ts") or 0.0 for row in readings), default=0.0)
        if self.action == "shrink" and self._acted_on is not None and newest <= self._acted_on:
            return split  # no sample since the last shrink: let it show its effect first
        if self.action == "shrink" and split * 2 <= max_split:
            self._acted_on = newest
            self.report(
                "shrink",
                f"{'; '.join(problems)}: each micro-batch now runs in {split * 2} passes "
                "(same effective batch)",
                None,
            )
            return split * 2
        self.pause(step, problems)
        return split

    def pause(self, step: int, problems: list[str]) -> float:
        """Wait until the readings clear (or a cancel); returns the seconds waited."""
        started = self.clock()
        self.pauses += 1
        self.report("pause", f"paused before step {step + 1}: {'; '.join(problems)}", None)
        how = "cancelled"
        while not self.should_stop():
            self.sleep(self.poll_s)
            readings = self.feed.latest()
            if not readings:  # nothing fresh to judge by: holding on would be blind
                how = "no fresh samples to judge by"
                break
            if self.limits.cleared(readings):
                how = "readings back under the limits"
                break
        waited = self.clock() - started
        self.paused_s += waited
        self.report("resume", f"resumed after {waited:.1f} s paused ({how})", waited)
        return waited


def guard_for_job(
    db: Database,
    job_id: int,
    report: Report,
    should_stop: Callable[[], bool],
    settings: GuardSettings | None = None,
) -> Guard:
    """The guard of a running job: the settings and limits in force, fed by its own samples."""
    settings = settings or load_settings()
    return Guard(
        StoreFeed(db, job_id),
        limits_from(settings),
        action=settings.action,
        poll_s=settings.poll_s,
        report=report,
        should_stop=should_stop,
    )


def save_overrides(values: dict[str, Any]) -> GuardSettings:
    """Write ``values`` over the home's guard.yaml (other keys kept) and return the settings
    then in force; GuardConfigError naming the key, and nothing written, when one is bad."""
    import yaml

    path = paths.home_dir() / GUARD_FILE
    current = {}
    if path.is_file():
        current = paths.read_yaml(path, GuardConfigError, "Guard settings") or {}
    merged = {**current, **values}
    parse_settings(merged, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return load_settings()
