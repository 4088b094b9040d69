"""Config strings reach the rules' shell commands quoted (issue 22, item 3).

`data_dir`, `fetch_from` and the `models:` paths are free text. The shell commands a dry run prints are
run under bash with a stand-in `clipo` that records its argv: a space must leave the value one argument
and `$(...)`, backquotes or a quote must stay text, never run. One real job (synth_data) checks the same
end to end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import snakemake, write_config

HOSTILE = ["my data", "d$(touch pwned)", "d`touch pwned`", "d'; touch pwned; echo '"]
"""A space, command substitution twice, and a quote that would end a hand-written '...'."""


def shell_commands(cwd: Path, config: Path) -> list[tuple[str, str]]:
    """(rule, shell command) of every job a dry run prints with -p."""
    proc = snakemake(cwd, "-n", "-p", "--configfile", str(config))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found, rule = [], None
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\S+):$", line.strip()):
            rule = m.group(1)
        elif line.startswith("Shell command: ") and line != "Shell command: None":  # target rules have none
            found.append((rule, line.removeprefix("Shell command: ")))
    return found


def run_with_recording_clipo(cwd: Path, commands: list[tuple[str, str]]) -> dict[str, list[list[str]]]:
    """Each command under bash with `clipo` replaced by a recorder of its argv: rule → argv lists."""
    bin_dir, record = cwd / "fake-bin", cwd / "argv.jsonl"
    bin_dir.mkdir()
    fake = bin_dir / "clipo"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    "with open(os.environ['CLIPO_ARGV'], 'a') as f:\n"
                    "    f.write(json.dumps([os.environ['RULE'], sys.argv[1:]]) + '\\n')\n")
    fake.chmod(0o755)
    (cwd / "results").mkdir(exist_ok=True)
    for rule, command in commands:
        for log in re.findall(r"> (results/\S+\.log);", command):  # the log's folder, as Snakemake makes it
            (cwd / log).parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CLIPO_ARGV": str(record),
               "RULE": rule}
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (rule, command, done.stderr)
    calls: dict[str, list[list[str]]] = {}
    for line in record.read_text().splitlines():
        rule, argv = json.loads(line)
        calls.setdefault(rule, []).append(argv)
    return calls


def value_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def nothing_ran(root: Path) -> None:
    injected = [p for p in root.rglob("*") if p.name in ("pwned", "touch")]
    assert not injected, injected


@pytest.mark.parametrize("data_dir", HOSTILE)
def test_data_dir_reaches_every_command_as_one_argument(tmp_path, data_dir):
    config = write_config(tmp_path / "c.yaml", data_dir=data_dir)
    calls = run_with_recording_clipo(tmp_path, shell_commands(tmp_path, config))
    nothing_ran(tmp_path)
    assert set(calls) == {"synth_data", "sft", "train_mini", "eval_mini", "tables", "figure", "significance",
                          "build_report"}
    for rule in ("synth_data", "sft", "train_mini", "eval_mini"):
        for argv in calls[rule]:
            assert value_after(argv, "--data-dir") == data_dir, (rule, argv)
    assert calls["synth_data"][0][:2] == ["data", "synth"]


@pytest.mark.parametrize("path", [*HOSTILE, "models/{name}"])  # braces: no wildcard in a path outside outputs
def test_fetch_from_and_model_paths_reach_the_commands_as_one_argument(tmp_path, path):
    config = write_config(tmp_path / "c.yaml", fetch_from=path, models={"qwen2.5-3b-instruct": path},
                          grid=[{"track": ["I"], "method": ["base", "grpo"]}], tables=[], figures=[])
    calls = run_with_recording_clipo(tmp_path, shell_commands(tmp_path, config))
    nothing_ran(tmp_path)
    assert [value_after(argv, "--from") for argv in calls["fetch_track_I"]] == [path]
    assert [value_after(argv, "--model-path") for argv in calls["train_verl"]] == [path]
    evaluated = {value_after(argv, "--run-id"): value_after(argv, "--model") for argv in calls["eval_verl"]}
    assert evaluated["I_qwen2.5-3b-instruct_base_none_tau-_g16_s0_verl"] == path  # the base model itself


def test_a_real_data_job_writes_into_a_folder_with_shell_syntax(tmp_path):
    data_dir = "my d$(touch pwned)"
    config = write_config(tmp_path / "c.yaml", data_dir=data_dir)
    proc = snakemake(tmp_path, "synth_data", "--cores", "1", "--configfile", str(config))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / data_dir / "mini" / "train.parquet").stat().st_size > 0
    nothing_ran(tmp_path)
