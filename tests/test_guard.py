"""The resource guard: limits from NVML and the config, pause with hysteresis, shrink, and a real
tiny-model training held by a fake monitor feed (same adapter as an unpaused run)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from test_training import TINY

from core import guard
from core.guard import GpuLimits, Guard, Limits
from core.models.registry import get_model
from core.tasks.spec import get_task
from core.training.trainer import NoHooks, Trainer, load_for_training

LIMITS = Limits(gpus={0: GpuLimits(max_temp_c=80.0, max_power_w=300.0)}, temp_hysteresis_c=5.0)


def reading(temp: float, power: float = 100.0, ts: float = 0.0) -> dict:
    return {"ts": ts, "gpu_index": 0, "gpu_temp_c": temp, "gpu_power_w": power}


class ScriptedFeed:
    """A fake monitor feed: each ``latest()`` returns the next temperature (the last repeats)."""

    def __init__(self, temps: list[float]) -> None:
        self.temps, self.reads = list(temps), 0

    def latest(self) -> list[dict]:
        temp = self.temps[min(self.reads, len(self.temps) - 1)]
        self.reads += 1
        return [reading(temp, ts=float(self.reads))]


class Recorder:
    """The guard's report callback and a fake clock/sleep that never waits."""

    def __init__(self) -> None:
        self.events, self.now, self.sleeps = [], 0.0, []

    def report(self, kind, message, seconds) -> None:
        self.events.append((kind, message, seconds))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_guard(temps: list[float], action: str = "pause") -> tuple[Guard, Recorder, ScriptedFeed]:
    recorder, feed = Recorder(), ScriptedFeed(temps)
    held = Guard(
        feed,
        LIMITS,
        action=action,
        poll_s=2.0,
        report=recorder.report,
        sleep=recorder.sleep,
        clock=recorder.clock,
    )
    return held, recorder, feed


class GuardedHooks(NoHooks):
    def __init__(self, held: Guard) -> None:
        self.between_steps = held.between_steps


# ---------------------------------------------------------------- limits and hysteresis


def test_a_breach_pauses_until_under_the_limit_minus_the_hysteresis():
    held, recorder, _ = make_guard([90.0, 79.0, 76.0, 74.0])
    assert held.between_steps(3, 1, 8) == 1
    assert [kind for kind, _, _ in recorder.events] == ["pause", "resume"]
    assert (
        "before step 4" in recorder.events[0][1] and "90 °C (limit 80 °C)" in recorder.events[0][1]
    )
    assert recorder.sleeps == [2.0, 2.0, 2.0]  # 79 and 76 are under 80 but inside the band
    assert held.paused_s == pytest.approx(6.0) and recorder.events[1][2] == pytest.approx(6.0)


def test_within_limits_nothing_waits():
    held, recorder, _ = make_guard([79.9])
    assert held.between_steps(0, 1, 8) == 1 and recorder.events == [] and held.paused_s == 0


def test_a_cancel_ends_a_pause():
    held, recorder, _ = make_guard([95.0])
    stops = iter([False, True])
    held.should_stop = lambda: next(stops, True)
    held.between_steps(0, 1, 8)
    assert recorder.events[-1][0] == "resume" and "cancelled" in recorder.events[-1][1]


def test_a_pause_ends_when_no_fresh_sample_comes():
    held, recorder, feed = make_guard([95.0])
    feed.latest = iter([[reading(95.0)], []]).__next__  # the breach, then the sampler stopped
    held.between_steps(0, 1, 8)
    assert "no fresh samples" in recorder.events[-1][1]


def test_shrink_doubles_the_passes_then_pauses_once_a_pass_is_one_example():
    held, recorder, feed = make_guard([90.0, 90.0, 90.0, 70.0], action="shrink")
    assert held.between_steps(0, 1, 2) == 2  # the first breach: two passes per micro-batch
    assert recorder.events[0][0] == "shrink" and "2 passes" in recorder.events[0][1]
    assert held.between_steps(1, 2, 2) == 2  # cannot shrink further: it pauses instead
    assert [kind for kind, _, _ in recorder.events] == ["shrink", "pause", "resume"]


def test_power_limit_and_the_ram_floor_of_cpu_runs():
    assert LIMITS.breaches([reading(50.0, power=320.0)]) == ["GPU 0 at 320 W (limit 300 W)"]
    floor = Limits(min_free_ram_mb=1000.0, ram_hysteresis_mb=500.0)
    cpu = {"gpu_index": None, "ram_total_mb": 8000.0}
    assert floor.breaches([{**cpu, "ram_used_mb": 7500.0}]) == [
        "500 MB of RAM free (floor 1000 MB)"
    ]
    assert not floor.cleared([{**cpu, "ram_used_mb": 6800.0}])  # 1200 free: inside the band
    assert floor.cleared([{**cpu, "ram_used_mb": 6000.0}])


class FakeNvml:
    """pynvml's calls the guard makes, for two GPUs; the second reports no slowdown threshold."""

    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return SimpleNamespace(index=index)

    def nvmlDeviceGetTemperatureThreshold(self, handle, kind):
        assert kind == self.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        if handle.index == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 87

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000 if handle.index == 0 else 300_000  # milliwatts


def test_defaults_come_from_nvml_minus_the_margin_and_the_config_replaces_them():
    settings = guard.GuardSettings(temp_margin_c=5, power_margin_pct=10)
    found = guard.limits_from(settings, FakeNvml())
    assert found.gpus[0] == GpuLimits(82.0, pytest.approx(630.0), "NVML minus margin")
    assert found.gpus[1].max_temp_c is None and found.gpus[1].max_power_w == pytest.approx(270.0)
    mine = guard.limits_from(
        guard.GuardSettings(max_temp_c={1: 75.0}, max_power_w=250.0), FakeNvml()
    )
    assert (mine.gpus[0].max_temp_c, mine.gpus[0].max_power_w) == (82.0, 250.0)
    assert (mine.gpus[1].max_temp_c, mine.gpus[1].source) == (75.0, "config")


def test_a_bad_guard_file_names_the_file_and_the_key(finboard_home):
    path = Path(finboard_home) / "guard.yaml"
    path.write_text("max_temp_c: hot\n")
    with pytest.raises(guard.GuardConfigError, match=r"guard.yaml: max_temp_c must be a number"):
        guard.load_settings()
    path.write_text("action: sleep\n")
    with pytest.raises(guard.GuardConfigError, match="action must be one of pause, shrink"):
        guard.load_settings()
    path.write_text("max_power_w: {0: 250}\noom_retries: 1\n")
    settings = guard.load_settings()
    assert settings.max_power_w == {0: 250.0} and settings.oom_retries == 1


# ---------------------------------------------------------------- a real training, held


def _adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


@pytest.fixture
def chat(finboard_home):
    return get_model("tiny-llama-chat")


@pytest.mark.usefixtures("one_thread")
def test_a_hot_reading_pauses_a_real_training_between_steps_and_the_adapter_is_unchanged(
    chat, tmp_path
):
    spec = get_task("fin_sentiment")
    straight = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path / "straight")
    assert straight.run().steps == 4
    # before step 1: cool; before step 2: 90 °C -> pause; polls: 78 (in the band), 70 -> resume
    held, recorder, feed = make_guard([60.0, 90.0, 78.0, 70.0, 60.0])
    paused = Trainer(
        load_for_training(chat, TINY), spec, TINY, tmp_path / "paused", GuardedHooks(held)
    )
    result = paused.run()
    assert result.status == "completed" and result.steps == 4
    assert [kind for kind, _, _ in recorder.events] == ["pause", "resume"]
    assert "before step 2" in recorder.events[0][1] and recorder.sleeps == [2.0, 2.0]
    assert feed.reads == 4 + 2  # one read before each of the 4 steps, two while paused
    a, b = _adapter(tmp_path / "straight"), _adapter(tmp_path / "paused")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.usefixtures("one_thread")
def test_shrinking_keeps_the_effective_batch_and_the_update(chat, tmp_path):
    spec = get_task("fin_sentiment")
    straight = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path / "straight")
    straight.run()
    held, recorder, _ = make_guard([90.0, 60.0], action="shrink")
    shrunk = Trainer(
        load_for_training(chat, TINY), spec, TINY, tmp_path / "shrunk", GuardedHooks(held)
    )
    assert shrunk.run().steps == 4 and shrunk.micro_split == 2
    assert [kind for kind, _, _ in recorder.events] == ["shrink"]
    a, b = _adapter(tmp_path / "straight"), _adapter(tmp_path / "shrunk")
    for key in a:  # the same sum of gradients in two passes: equal up to float rounding
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- in a job, and the CLI


def test_a_job_s_guard_events_are_stored_and_logged(db, capsys):
    from core.jobs import queue
    from core.jobs.run import JobContext

    job_id = queue.submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"]})
    ctx = JobContext(db, queue.get(db, job_id))
    assert ctx.between_steps(0, 1, 8) == 1  # no guard (not a training job): nothing happens
    held, recorder, _ = make_guard([90.0, 70.0])
    held.report = ctx.guard_event
    ctx.guard = held
    recorder.now = 0.0
    assert ctx.between_steps(4, 1, 8) == 1
    events = queue.events(db, job_id)
    assert [e["kind"] for e in events] == ["pause", "resume"]
    assert events[1]["seconds"] == pytest.approx(2.0) and queue.paused_seconds(db, job_id) == 2.0
    assert "resource guard: paused before step 5: GPU 0 at 90 °C" in capsys.readouterr().out
    figures = ctx.resource_figures()
    assert figures["paused_s"] == 2.0 and figures["gpu_util_mean"] is None


def test_the_guard_command_shows_and_saves_limits_and_refuses_bad_ones(finboard_home):
    from click.testing import CliRunner

    from core.cli import main

    runner = CliRunner()
    shown = runner.invoke(main, ["guard"])
    assert shown.exit_code == 0 and "pause below 512 MB of free RAM" in shown.output
    saved = runner.invoke(
        main, ["guard", "--set", "min_free_ram_mb=2048", "--set", "action=shrink"]
    )
    assert saved.exit_code == 0 and "Over a limit: shrink" in saved.output
    before = (Path(finboard_home) / "guard.yaml").read_text()
    bad = runner.invoke(main, ["guard", "--set", "max_power_w=-5"])
    assert (
        bad.exit_code == 1
        and "guard.yaml: max_power_w must be a number of at least 0" in bad.output
    )
    assert (Path(finboard_home) / "guard.yaml").read_text() == before  # nothing written
