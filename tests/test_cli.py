"""The ``clipo`` command line itself: help texts, --version, error wording and each command's closing line."""

import argparse
import os
import time
from importlib.metadata import PackageNotFoundError, version

import pytest

from clipo.cli import build_parser, closing_line, main, package_version


def parsers(parser: argparse.ArgumentParser, name: str = "clipo"):
    """Every (name, parser) of the command tree."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_no_help_page_shows_an_escaped_percent_sign():
    pages = {name: p.format_help() for name, p in parsers(build_parser())}
    assert "95%" in pages["clipo significance"]
    assert [name for name, text in pages.items() if "%%" in text] == []


def test_every_option_says_what_it_does():
    silent = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in parsers(build_parser())
              for a in p._actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert silent == []


def test_version_prints_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    try:
        expected = version("clipo")
    except PackageNotFoundError:
        expected = "version unknown"
    assert capsys.readouterr().out.strip() == f"clipo {package_version()}"
    assert expected in package_version()


def test_a_bad_run_id_is_one_sentence_naming_it_and_the_expected_form(tmp_path, capsys):
    argv = ["evaluate", "--model", str(tmp_path), "--source", "mini", "--data-dir", str(tmp_path),
            "--out", str(tmp_path / "eval")]
    assert main([*argv, "--run-id", "mini_grpo_s0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipo evaluate: error: 'mini_grpo_s0' is not a run id: expected TRACK_MODEL_")
    assert "(?P<" not in err and "[^_]" not in err and len(err.splitlines()) == 1
    assert main([*argv, "--run-id", "X_m_grpo_none_tau-_g8_s0_mini"]) == 2
    assert "run id 'X_m_grpo_none_tau-_g8_s0_mini': run track='X'" in capsys.readouterr().err


def test_a_command_ends_with_a_line_naming_what_it_wrote(tmp_path, capsys):
    assert main(["data", "synth", "--data-dir", str(tmp_path / "data"), "--n-train", "10", "--n-eval", "2"]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"clipo data synth: wrote {tmp_path / 'data' / 'mini'}/ (mc.parquet, p1.parquet, ")
    assert "train.parquet) in " in last and last.endswith(" s")


def namespace(command: str, **values) -> argparse.Namespace:
    return argparse.Namespace(command=command, **values)


def test_the_closing_line_lists_only_what_changed_and_says_when_nothing_did(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "old.txt").write_text("from an earlier run")
    past = time.time() - 3600
    os.utime(run / "old.txt", (past, past))
    started = time.time()
    (run / "final").mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    (run / ".clipo.lock").write_text("")
    line = closing_line(namespace("train", out=str(run)), started, 112.4)
    assert line == f"clipo train: wrote {run}/ (final/, metrics.jsonl) in 112 s"
    assert closing_line(namespace("train", out=str(run)), time.time() + 60, 3.0) == (
        f"clipo train: {run}/ already up to date, nothing written (3.0 s)")
    report = tmp_path / "report.md"
    report.write_text("# report\n")
    assert closing_line(namespace("report", out=str(report)), started, 150) == f"clipo report: wrote {report} in 2.5 min"
    assert closing_line(namespace("sft", out=str(tmp_path / "none")), started, 1) == (
        f"clipo sft: nothing written to {tmp_path / 'none'} in 1.0 s")
    assert closing_line(namespace("train", out=None, dry_run=False), started, 1) == "clipo train: done in 1.0 s"


def test_commands_that_write_nothing_have_no_closing_line(tmp_path):
    assert closing_line(namespace("train", out=str(tmp_path), dry_run=True), time.time(), 1) is None
    assert closing_line(namespace("doctor"), time.time(), 1) is None


def test_train_options_and_the_train_parser_are_one_declaration():
    """Every TrainOptions field is a `clipo train` argument with the field's help text, and parsing a
    command line gives back the options it spells (defaults included)."""
    from dataclasses import fields

    from clipo.runs import TrainOptions

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    by_dest = {a.dest: a for a in train._actions}
    for f in fields(TrainOptions):
        assert by_dest[f.name].help == f.metadata["help"]
    args = train.parse_args(["--backend", "mini", "--track", "mini", "--method", "grpo", "--clipo", "infonce",
                             "--tau", "0.2", "--steps", "3", "--fixed-head", "--model-path", "m"])
    opts = TrainOptions.from_args(args)
    assert opts == TrainOptions("mini", "mini", "grpo", "infonce", tau=0.2, steps=3, fixed_head=True,
                                model_path="m")
    assert opts.seed == 0 and opts.data_dir == "data" and opts.overrides == ()


def test_train_option_types_come_from_resolved_annotations():
    """argparse types are read from the fields' resolved annotations, not their spelling; an annotation
    argparse cannot convert to is refused with the field's name."""
    from clipo.runs import _argument_type

    assert _argument_type("lr", float | None) is float and _argument_type("data_dir", str) is str
    for annotation in (list[int], int | str | None, bool):
        with pytest.raises(TypeError, match="TrainOptions.field"):
            _argument_type("field", annotation)
