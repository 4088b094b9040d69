"""clipo.progress: tqdm on a terminal, whole lines in a log file."""

import io
import os
import subprocess
import sys
import textwrap

from tqdm import tqdm

from clipo.progress import PlainProgress, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_whole_lines_without_carriage_returns(tmp_path):
    script = textwrap.dedent("""
        from clipo.progress import progress
        bar = progress(range(20), desc="rl", unit="step", min_gap_s=0)
        for step in bar:
            bar.set_postfix(reward=f"{step / 20:.3f}")
    """)
    log = tmp_path / "train.log"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-c", script], stderr=stderr, check=True)
    text = log.read_bytes().decode()  # read_text() would turn "\r" into "\n"
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("rl: 0/20 step (0%)")
    assert lines[-1].startswith("rl: 20/20 step (100%)")
    assert "reward=0.950" in lines[-1]
    assert len(lines) == 11  # the start, then every 10 % (2 steps): 2, 4, ..., 20


def test_lines_carry_rate_eta_and_postfix_and_each_update_is_counted():
    stream = io.StringIO()
    bar = progress(total=10, initial=4, desc="sft", unit="step", stream=stream, every_s=0)
    assert isinstance(bar, PlainProgress)
    bar.update(1)
    bar.set_postfix(loss="0.532")
    bar.update(2)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines] == ["sft: 4/10 step (40%)", "sft: 5/10 step (50%)",
                                                       "sft: 7/10 step (70%)"]
    assert "step/s" in lines[1] and "ETA" in lines[1] and lines[2].endswith("loss=0.532")


def test_a_quick_loop_writes_only_its_first_and_last_line():
    stream = io.StringIO()
    for _ in progress(range(50), desc="synth", unit="split", stream=stream):
        pass
    assert [line.split(" |")[0] for line in stream.getvalue().splitlines()] == ["synth: 0/50 split (0%)",
                                                                              "synth: 50/50 split (100%)"]


def test_close_writes_the_last_count_once_and_an_open_total_has_no_eta():
    stream = io.StringIO()
    bar = progress(desc="evaluate", unit="sample", stream=stream, every_s=3600)
    bar.update(5)
    bar.close()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines] == ["evaluate: 0 sample", "evaluate: 5 sample"]
    assert "ETA" not in lines[1] and "%" not in lines[1]


def test_a_terminal_gets_tqdm_and_disable_writes_nothing():
    assert isinstance(progress(range(3), desc="rl", stream=Terminal()), tqdm)
    stream = io.StringIO()
    for _ in progress(range(3), desc="rl", stream=stream, disable=True):
        pass
    assert stream.getvalue() == ""


def test_a_clipo_sft_log_has_no_carriage_return_from_us_or_transformers(tmp_path):
    from clipo.data.synthetic import write_mini

    write_mini(tmp_path / "data", n_train=20, n_eval=2)
    log = tmp_path / "sft.log"
    with open(log, "w") as out:  # as a Snakemake rule runs it: `clipo sft ... >> {log} 2>&1`
        subprocess.run([sys.executable, "-m", "clipo.cli", "sft", "--data-dir", str(tmp_path / "data"),
                        "--out", str(tmp_path / "base"), "--steps", "2", "--batch-size", "2"],
                       stdout=out, stderr=out, check=True,
                       env={k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"})
    text = log.read_bytes().decode()  # read_text() would turn "\r" into "\n"
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "sft: 0/2 step (0%) | elapsed 00:00"
    assert any(line.startswith("sft: 2/2 step (100%)") and "loss=" in line for line in lines)
    assert lines[-1].startswith(f"clipo sft: wrote {tmp_path / 'base'}/ (") and "model.safetensors" in lines[-1]
