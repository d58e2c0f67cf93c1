"""``mixdvae bench speed`` runs end to end on one process and writes its JSON (no timing asserted);
``benchmarks/gpu_check.py`` answers a machine without CUDA with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from mixdvae.cli.main import main

from conftest import REPO_ROOT


def test_bench_speed_writes_throughput_and_efficiency(tmp_path, capsys):
    out = tmp_path / "speed.json"
    code = main(["bench", "speed", "--processes", "1", "--windows", "2", "--chunk-size", "1", "--cases", "20x3",
                 "--mixtures", "0", "--repeats", "1", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| tracking T=20 N=3 | windows/s |" in captured.out
    result = json.loads(out.read_text())
    control, torch_control, row = result["rows"]
    assert torch_control["case"] == "control (torch kernels)"
    assert control["unit"] == "loops/s"
    entry = row["by_processes"]["1"]
    assert row["items"] == 2 and entry["efficiency"] == 1.0 and entry["throughput"] > 0
    assert entry["threads_per_process"] == 1


def test_bench_speed_bad_cases_exit_2(capsys):
    assert main(["bench", "speed", "--cases", "60"]) == 2
    assert "expected TxN pairs" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a machine without CUDA")
def test_gpu_check_without_cuda_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--windows", "8"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False); nothing to check"]
