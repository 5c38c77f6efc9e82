"""Monitoring: samples with or without a GPU, the sampler thread, and energy integration."""

from __future__ import annotations

import time

import pytest

from core import monitoring, store


@pytest.fixture
def memory_db():
    db = store.connect(":memory:")
    yield db
    db.close()


def test_sample_has_cpu_and_ram():
    rows = monitoring.sample()
    assert rows
    for row in rows:
        assert 0 <= row["cpu_percent"] <= 100 * 256
        assert 0 < row["ram_used_mb"] <= row["ram_total_mb"]
        assert row["ts"] == pytest.approx(time.time(), abs=60)
        assert set(monitoring.GPU_FIELDS) <= set(row)


@pytest.mark.skipif(monitoring.gpu_available(), reason="this machine has an NVIDIA GPU")
def test_no_gpu_is_a_normal_state(memory_db):
    (row,) = monitoring.sample()
    assert all(row[name] is None for name in monitoring.GPU_FIELDS)
    assert monitoring.gpu_count() == 0
    assert monitoring.status_line() == monitoring.NO_GPU_LINE
    assert monitoring.record(memory_db, job_id=7) == 1
    stored = list(memory_db["monitor_samples"].rows)
    assert stored[0]["job_id"] == 7 and stored[0]["gpu_util"] is None
    assert monitoring.energy_wh(memory_db, 7) is None


@pytest.mark.skipif(not monitoring.gpu_available(), reason="no NVIDIA GPU here")
def test_gpu_sample_fields():
    rows = monitoring.sample()
    assert [r["gpu_index"] for r in rows] == list(range(monitoring.gpu_count()))
    for row in rows:
        assert row["gpu_name"] and row["gpu_mem_total_mb"] > 0
        assert 0 <= row["gpu_util"] <= 100
    assert "NVIDIA GPU" in monitoring.status_line()


def test_energy_integrates_power_over_time_per_gpu(memory_db):
    def add(job_id, gpu, ts, watts):
        memory_db["monitor_samples"].insert(
            {"ts": ts, "job_id": job_id, "gpu_index": gpu, "gpu_power_w": watts}
        )

    add(1, 0, 1000.0, 100.0)  # GPU 0: 100 W for an hour -> 100 Wh
    add(1, 0, 4600.0, 100.0)
    add(1, 1, 1000.0, 50.0)  # GPU 1: 50 W rising to 150 W over half an hour -> 50 Wh
    add(1, 1, 2800.0, 150.0)
    add(1, None, 1500.0, None)  # a CPU-only sample: no power, ignored
    add(2, 0, 1000.0, 300.0)  # another job: not counted
    add(2, 0, 4600.0, 300.0)
    assert monitoring.energy_wh(memory_db, 1) == pytest.approx(150.0)
    assert monitoring.energy_wh(memory_db, 2) == pytest.approx(300.0)
    assert monitoring.energy_wh(memory_db, 3) is None


def test_sampler_thread_records_until_stopped(tmp_path):
    db = store.connect(tmp_path / "samples.db")  # a file: the sampler opens its own connection
    sampler = monitoring.Sampler(db, job_id=None, interval_s=0.05).start()
    deadline = time.monotonic() + 30
    while db["monitor_samples"].count < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sampler.stop()
    count = db["monitor_samples"].count
    assert count >= 2 and sampler.errors == 0
    time.sleep(0.2)
    assert db["monitor_samples"].count == count  # stopped means stopped
    db.close()
