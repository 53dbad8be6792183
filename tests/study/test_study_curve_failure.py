"""A learning-curve point or an ablation variant that cannot run costs the study only that point or row: the main
trials, the rest of the curve and the other rows are kept, results.json and the report say what could not run and
why, and a bug's traceback is kept in that trial's folder."""

import re
from pathlib import Path

from graftlab.core.config import StudyConfig
from graftlab.core.errors import DataError
from graftlab.strategies.finetune import Finetune
from graftlab.strategies.tfidf_logreg import TfidfLogreg
from graftlab.study import Study
from graftlab.testing import synthetic_reviews

TOO_FEW = "Too few examples for TF-IDF at this size."


def config(tmp_path, strategies, backbones=(), **eval_) -> StudyConfig:
    synthetic_reviews(240, seed=0).to_csv(tmp_path / "reviews.csv", index=False)
    return StudyConfig.from_dict({
        "name": "tiny",
        "data": {"source": {"kind": "csv", "path": str(tmp_path / "reviews.csv")}, "text": "review", "label": "score"},
        **({"backbones": list(backbones)} if backbones else {}),
        "strategies": strategies,
        "train": {"epochs": 1, "lr": 3e-3, "batch_size": 16, "max_length": 32},
        "eval": {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off", "latency": False, **eval_},
        "tracking": {"enabled": False},
        "output_dir": str(tmp_path / "runs"),
    })


def console_text(res) -> str:
    """What `graft study` prints of the result."""
    from rich.console import Console

    from graftlab.cli.study import render_result

    console = Console(record=True, width=200)
    render_result(res, console)
    return console.export_text()


def report_text(run_dir: Path) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", (run_dir / "report.html").read_text()).split())


def test_a_learning_curve_point_that_cannot_run_is_left_out_and_named(tmp_path, monkeypatch):
    fit = TfidfLogreg.fit

    def refuses_small_sets(self, train, val, ctx):
        if len(train) < 100:  # the main training split is larger; a quarter of it is not
            raise DataError(TOO_FEW)
        return fit(self, train, val, ctx)

    monkeypatch.setattr(TfidfLogreg, "fit", refuses_small_sets)
    res = Study(config(tmp_path, ["majority", "tfidf_logreg"], fractions=[0.25]), progress=False).run()
    assert set(res.results["strategies"]) == {"majority", "tfidf_logreg"} and not res.results["failed"]
    lc = res.results["learning_curve"]
    assert [p["size"] for p in lc["points"]["majority"]] == ["0.25", "all"]
    assert [p["size"] for p in lc["points"]["tfidf_logreg"]] == ["all"]  # its other point is still drawn
    assert lc["failed"] == [{"strategy": "tfidf_logreg", "size": "0.25", "seed": res.results["seeds"][0], "error": TOO_FEW,
                             "type": "DataError", "user_error": True}]
    assert f"Left out of the curve, could not run: tfidf_logreg at 0.25 ({TOO_FEW})." in report_text(res.run_dir)
    assert f"tfidf_logreg at training size 0.25 could not run and is left out of the learning curve: {TOO_FEW}" in console_text(res)


def test_an_ablation_variant_that_cannot_run_has_a_row_saying_so(tiny_bert, tmp_path, monkeypatch):
    fit = Finetune.fit

    def broken_without_focal(self, train, val, ctx):
        if self.params.loss is None or self.params.loss.kind != "focal":
            raise RuntimeError("boom in the variant")
        return fit(self, train, val, ctx)

    monkeypatch.setattr(Finetune, "fit", broken_without_focal)
    focal = {"finetune": {"trainable_layers": 1, "loss": {"kind": "focal", "gamma": 2.0}, "label": "ft-focal"}}
    res = Study(config(tmp_path, ["majority", focal], backbones=[tiny_bert]), progress=False).run()
    assert set(res.results["strategies"]) == {"majority", "ft-focal"} and not res.results["failed"]
    (row,) = res.results["ablation"]
    assert (row["strategy"], row["knob"], row["variant"]) == ("ft-focal", "focal", "ft-focal without focal")
    assert row["error"] == "RuntimeError: boom in the variant" and not row["user_error"] and "diff" not in row
    traceback = Path(row["traceback"]).read_text()
    assert "Traceback (most recent call last)" in traceback and "broken_without_focal" in traceback
    assert Path(row["traceback"]).parent.name == "seed-0" and Path(row["traceback"]).parent.parent.name == "size-ablation"
    assert "ft-focal focal Macro F1 could not run: RuntimeError: boom in the variant" in report_text(res.run_dir)
    assert "ft-focal without focal (ablation of focal) could not run: RuntimeError: boom in the variant" in console_text(res)


def test_nothing_is_listed_when_every_curve_point_runs(tmp_path):
    res = Study(config(tmp_path, ["majority", "tfidf_logreg"], fractions=[0.5]), progress=False).run()
    assert res.results["learning_curve"]["failed"] == [] and "ablation" not in res.results
    assert "could not run" not in report_text(res.run_dir) and "could not run" not in console_text(res)
