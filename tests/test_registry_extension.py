"""Adding a loss or a method is one registry entry plus its maths: a throw-away loss and method,
registered here and removed afterwards, reach the config check, the trainers' settings, Tables 1 and 13,
Figure 3 and the labels without an edit to the analysis code."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import torch
import yaml

from clipo import contrastive, methods
from clipo.analysis import fig3, vocab
from clipo.analysis.paper_tables import PAPER_TABLES, Select, mini_tables
from clipo.data.registry import benchmarks
from clipo.errors import ConfigError
from clipo.runs import RunSpec, expand_grid

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
LOSS, METHOD = "tempnce", "tempo"


@pytest.fixture
def throwaway():
    """The loss 'tempnce' (λ 0.3, SoftNN's maths) and the method 'tempo', for one test only."""
    methods.register_contrastive_loss(LOSS, "TempNCE", 0.3)

    @contrastive.register_contrastive_loss_fn(LOSS)
    def tempnce(p: contrastive.Pairs) -> torch.Tensor:
        return p.log_sum_exp(p.others) - p.log_sum_exp(p.positives)

    methods.register_method(methods.Method(METHOD, "vanilla", "token-mean", 0.2, 0.2, use_kl_loss=False))
    try:
        yield
    finally:
        methods.CONTRASTIVE_LOSSES.pop(LOSS, None)
        contrastive.CONTRASTIVE_LOSS_FNS.pop(LOSS, None)
        methods.METHODS.pop(METHOD, None)


GRID = [{"track": ["mini"], "method": ["grpo", METHOD], "clipo": ["none", LOSS]}]


def test_the_config_accepts_registered_names_only(throwaway):
    jsonschema.validate({"grid": GRID}, SCHEMA)  # the schema leaves the names to the registries
    runs = expand_grid(GRID)
    assert {(r.method, r.clipo) for r in runs} == {("grpo", "none"), ("grpo", LOSS), (METHOD, "none"), (METHOD, LOSS)}
    with pytest.raises(ConfigError, match=rf"config grid\[0\]: run clipo='nope'; valid: .*softnn, {LOSS}, "):
        expand_grid([{"track": ["mini"], "method": ["grpo"], "clipo": ["nope"]}])
    with pytest.raises(ConfigError, match=rf"run method='nope'; valid: base, grpo, .*, {METHOD}"):
        expand_grid([{"track": ["mini"], "method": ["nope"]}])


def test_unregistered_names_fail_the_config():
    with pytest.raises(ConfigError, match=rf"run method='{METHOD}'; valid: base, grpo, gspo, dapo, gmpo$"):
        expand_grid([{"track": ["mini"], "method": [METHOD]}])
    with pytest.raises(ConfigError, match=rf"run clipo='{LOSS}'; valid: none, infonce, supcon, softnn, infonce-fixed$"):
        expand_grid([{"track": ["mini"], "method": ["grpo"], "clipo": [LOSS]}])


def test_the_trainers_settings_and_maths_come_from_the_registry(throwaway):
    settings = methods.clipo_variant(LOSS, methods.get_track("mini"))
    assert (settings.loss, settings.lam) == (LOSS, 0.3)
    emb = torch.nn.functional.normalize(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    correct, groups = torch.tensor([1, 1, 0, 0, 1, 1, 1, 0]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    mine, anchors = contrastive.contrastive_loss(emb, correct, groups, LOSS)
    softnn, _ = contrastive.contrastive_loss(emb, correct, groups, "softnn")
    assert anchors.sum() == 5 and torch.equal(mine, softnn)


def test_table_1_and_13_list_the_registered_method_and_loss(throwaway):
    t1 = [r.label for r in PAPER_TABLES["table1"].rows]
    assert t1[:6] == ["Base Model", "GRPO", "GSPO", "DAPO", "GMPO", "TEMPO"] and "TEMPO+CLIPO" in t1
    assert [r.label for r in PAPER_TABLES["table13"].rows if not r.is_delta][-1] == "CLIPO-TempNCE"
    grid = [Select("mini", "mini-base", m, c, None if c == "none" else 0.05, 8, 0)
            for m in ("base", "grpo", METHOD) for c in ("none", "infonce", LOSS) if m != "base" or c == "none"]
    mini = mini_tables(grid)
    assert [r.label for r in mini["table1"].rows if not r.is_delta] == [
        "Base Model", "GRPO", "TEMPO", "GRPO+CLIPO", "TEMPO+CLIPO"]
    assert [r.label for r in mini["table13"].rows if not r.is_delta] == ["GRPO", "CLIPO-InfoNCE", "CLIPO-TempNCE"]


def test_the_registered_names_leave_the_paper_tables_as_they_were():
    assert [r.label for r in PAPER_TABLES["table1"].rows][:5] == ["Base Model", "GRPO", "GSPO", "DAPO", "GMPO"]
    assert "TEMPO" not in [r.label for r in PAPER_TABLES["table1"].rows]


def test_figure_3_draws_the_registered_loss(throwaway, tmp_path):
    rows = []
    for clipo, tau, score in (("none", math.nan, 40.0), ("infonce", 0.05, 42.0), (LOSS, 0.05, 45.0)):
        rows += [{"source": "mini", "track": "mini", "model": "mini-base", "method": "grpo", "clipo": clipo,
                  "tau": tau, "group_size": 8, "seed": 0, "benchmark": b, "score": score, "n_problems": 50,
                  "n_samples": 1} for b in benchmarks("mini")]
    data = fig3.fig3(pd.DataFrame(rows), tmp_path, track="mini")
    gains = data[data["average"] == "Avg."].set_index("loss")["gain"]
    assert gains.to_dict() == pytest.approx({"infonce": 2.0, LOSS: 5.0})
    assert (tmp_path / "fig3_loss_gains.png").is_file()


def test_labels_and_order_read_the_registries(throwaway):
    assert vocab.variant_name(METHOD, LOSS) == "TEMPO+TempNCE"
    assert vocab.variant_label(METHOD, LOSS, 0.05) == "TEMPO + CLIPO TempNCE (τ = 0.05)"
    assert vocab.run_title(RunSpec("mini", "mini-base", METHOD, LOSS, 0.05, 8, 0)).startswith("TEMPO + CLIPO TempNCE")
    variants = ["infonce-fixed", LOSS, "none", "softnn", "infonce"]
    assert sorted(variants, key=vocab.variant_order) == ["none", "infonce", "softnn", LOSS, "infonce-fixed"]


def test_a_loss_without_maths_or_an_unknown_loss_fails_naming_the_valid_ones():
    emb, correct, groups = torch.eye(4), torch.tensor([1, 1, 0, 0]), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ConfigError, match="unknown contrastive loss 'nope'; valid: infonce, softnn, supcon"):
        contrastive.contrastive_loss(emb, correct, groups, "nope")
    with pytest.raises(ConfigError, match="clipo.loss='nope'; valid: infonce, supcon, softnn"):
        methods.Clipo(loss="nope")
    methods.register_contrastive_loss("bare", "Bare", 0.1)
    try:
        with pytest.raises(ConfigError, match="contrastive loss 'bare' has no function"):
            contrastive.contrastive_loss(emb, correct, groups, "bare")
    finally:
        methods.CONTRASTIVE_LOSSES.pop("bare")


def test_registering_a_name_twice_or_a_name_that_breaks_run_ids_fails():
    with pytest.raises(ConfigError, match="contrastive loss 'infonce' is registered already"):
        methods.register_contrastive_loss("infonce", "InfoNCE", 0.2)
    with pytest.raises(ConfigError, match="a run-id field"):
        methods.register_method(methods.Method("my_method", "vanilla", "token-mean", 0.2, 0.2, use_kl_loss=False))
    with pytest.raises(ConfigError, match="has a function already"):
        contrastive.register_contrastive_loss_fn("softnn")(lambda p: p.sim)
