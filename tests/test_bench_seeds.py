"""Pooling train_speed runs' seeds into one paired comparison (bench/seeds.py)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from seeds import main, paired_ci, pool_runs, t95  # noqa: E402


def run_json(first_seed: int, ours: list[float], trl: list[float], **over) -> dict:
    run = {
        "model": "smollm2-135m-instruct",
        "task": "fin_sentiment",
        "examples": 200,
        "epochs": 1,
        "device": "cpu",
        "heldout_rows": 64,
        "seeds": len(ours),
        "first_seed": first_seed,
        "ours": {"dtype": "bfloat16", "heldout_losses": ours},
        "trl": {"dtype": "bfloat16", "heldout_losses": trl},
        "cpu_flags": "avx2 avx512f avx512_bf16 amx_bf16",
    }
    run.update(over)
    return run


def write_output(path: Path, run: dict) -> Path:
    path.write_text("model=... progress lines\nseed 0 ours ...\n" + json.dumps(run) + "\n")
    return path


def test_t_quantiles_match_the_table_and_the_expansion_past_it():
    assert t95(15) == 2.131
    assert t95(60) == pytest.approx(2.000, abs=0.002)  # the t table's value for 60 df
    assert t95(120) == pytest.approx(1.980, abs=0.001)
    with pytest.raises(ValueError):
        t95(0)


def test_the_interval_uses_the_t_quantile_of_its_own_degrees_of_freedom():
    differences = [0.01, -0.02, 0.005, -0.004, 0.0, 0.012, -0.008, 0.003] * 2
    low, high = paired_ci(differences)
    half = 2.131 * statistics.stdev(differences) / 4
    mean = statistics.fmean(differences)
    assert low == pytest.approx(mean - half, abs=1e-4)
    assert high == pytest.approx(mean + half, abs=1e-4)
    assert paired_ci([0.1]) is None


def test_two_runs_pool_into_one_paired_sample(tmp_path):
    a = write_output(tmp_path / "a.out", run_json(0, [0.42, 0.44], [0.43, 0.44]))
    b = write_output(tmp_path / "b.out", run_json(2, [0.45, 0.40], [0.44, 0.41]))
    pooled = pool_runs(
        [
            (a, json.loads(a.read_text().splitlines()[-1])),
            (b, json.loads(b.read_text().splitlines()[-1])),
        ]
    )
    assert pooled["seeds"] == [0, 1, 2, 3]
    assert pooled["heldout_loss_differences"] == [-0.01, 0.0, 0.01, -0.01]
    assert pooled["ours_heldout_loss"] == 0.4275
    assert pooled["trl_heldout_loss"] == 0.43
    assert pooled["heldout_loss_not_worse_than_trl"] is True
    assert pooled["heldout_loss_difference_ci95"] == paired_ci([-0.01, 0.0, 0.01, -0.01])


def test_a_seed_counted_twice_is_refused_naming_the_file(tmp_path):
    a = write_output(tmp_path / "a.out", run_json(0, [0.42, 0.44], [0.43, 0.44]))
    b = write_output(tmp_path / "b.out", run_json(1, [0.44, 0.40], [0.44, 0.41]))
    with pytest.raises(ValueError, match=r"b\.out: seed 1 is already in .*a\.out"):
        pool_runs(
            [
                (a, json.loads(a.read_text().splitlines()[-1])),
                (b, json.loads(b.read_text().splitlines()[-1])),
            ]
        )


@pytest.mark.parametrize(
    "field, value",
    [("examples", 100), ("heldout_rows", 32), ("settings", {"lora_dropout": 0.0})],
)
def test_runs_that_trained_different_things_are_refused(tmp_path, field, value):
    a = write_output(
        tmp_path / "a.out", run_json(0, [0.42], [0.43], settings={"lora_dropout": 0.05})
    )
    b = write_output(tmp_path / "b.out", run_json(1, [0.45], [0.44], **{field: value}))
    if field != "settings":
        b = write_output(
            b, run_json(1, [0.45], [0.44], settings={"lora_dropout": 0.05}, **{field: value})
        )
    with pytest.raises(ValueError, match=rf"b\.out: field {field} is"):
        pool_runs([(p, json.loads(p.read_text().splitlines()[-1])) for p in (a, b)])


def test_a_run_without_paired_losses_is_refused_naming_the_field(tmp_path):
    a = write_output(tmp_path / "a.out", run_json(0, [0.42], [0.43]))
    unpaired = run_json(1, [0.45], [0.44])
    del unpaired["trl"]
    b = write_output(tmp_path / "b.out", unpaired)
    with pytest.raises(ValueError, match=r"b\.out: field 'trl' missing"):
        pool_runs([(p, json.loads(p.read_text().splitlines()[-1])) for p in (a, b)])


def test_different_dtypes_are_refused(tmp_path):
    a = write_output(tmp_path / "a.out", run_json(0, [0.42], [0.43]))
    fp32 = run_json(1, [0.45], [0.44])
    fp32["ours"]["dtype"] = "float32"
    b = write_output(tmp_path / "b.out", fp32)
    with pytest.raises(ValueError, match=r"b\.out: field ours\.dtype is 'float32'"):
        pool_runs([(p, json.loads(p.read_text().splitlines()[-1])) for p in (a, b)])


def test_the_command_prints_the_pooled_json_and_fails_clearly_on_a_run_without_one(
    tmp_path, capsys
):
    a = write_output(tmp_path / "a.out", run_json(0, [0.42, 0.44], [0.43, 0.44]))
    b = write_output(tmp_path / "b.out", run_json(2, [0.45, 0.40], [0.44, 0.41]))
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "4 seeds 0..3 (bfloat16)" in out[0]
    assert "ours lower on 2, equal on 1, higher on 1" in out[0]
    assert json.loads(out[-1])["seeds"] == [0, 1, 2, 3]

    broken = tmp_path / "broken.out"
    broken.write_text("seed 0 ours ... (the run was stopped)\n")
    assert main([str(a), str(broken)]) == 2
    assert "broken.out: no JSON line" in capsys.readouterr().err
