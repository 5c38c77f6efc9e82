"""The machine facts every benchmark prints beside its figures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from machine import isa_caps, memory_settings  # noqa: E402

from core.jobs.worker import job_env  # noqa: E402


def test_memory_settings_name_what_is_set_and_say_when_nothing_is():
    assert memory_settings({}) == "library defaults"
    assert memory_settings({"MALLOC_ARENA_MAX": "2", "PATH": "/bin"}) == "MALLOC_ARENA_MAX=2"


def test_a_job_s_memory_settings_are_the_ones_the_quick_path_bench_reports(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    said = memory_settings(job_env(None))
    assert said == "MALLOC_ARENA_MAX=2 ONEDNN_PRIMITIVE_CACHE_CAPACITY=64"


def test_an_instruction_set_cap_is_said_beside_the_flags(monkeypatch):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert isa_caps() == " (capped: ONEDNN_MAX_CPU_ISA=AVX2)"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert isa_caps() == ""
