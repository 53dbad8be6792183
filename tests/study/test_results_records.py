"""results.json as typed records: a study writes only declared fields, files of the previous release still read,
and a file the records cannot read is refused with a message."""

import json
from pathlib import Path

import pytest

from graftlab.core.errors import ArtifactError
from graftlab.core.results import SCHEMA_VERSION, StudyResults, as_results, load_results, unknown_keys
from graftlab.study import Study
from graftlab.core.config import StudyConfig

LEGACY = Path(__file__).parents[1] / "fixtures" / "results_v0"


@pytest.mark.parametrize("name", ["validation_study.json", "fewshot_study.json"])
def test_a_results_file_of_the_previous_release_reads_as_records_and_writes_back_unchanged(name):
    raw = json.loads((LEGACY / name).read_text())
    assert "schema_version" not in raw  # written before the field existed
    results = load_results(LEGACY / name)
    assert results.schema_version == 1
    assert unknown_keys(results) == []
    assert json.dumps(results.to_dict(), sort_keys=True) == json.dumps(raw, sort_keys=True)
    # the fields every reader uses
    assert results.champion is results.strategies[raw["winner"]]
    assert results.champion.calibration.temperature == raw["strategies"][raw["winner"]]["calibration"]["temperature"]
    assert [g.passed for g in results.gates] == [g["passed"] for g in raw["gates"]]


def test_the_fewshot_file_exposes_the_refit_as_the_headline():
    results = load_results(LEGACY / "fewshot_study.json")
    refit = results.selection.refit
    assert refit is not None and refit.done
    assert results.headline == refit.test[results.headline_metric]
    assert results.headline != results.champion.score(results.headline_metric)


def test_a_study_writes_typed_results_with_no_undeclared_key(tiny_bert, tmp_path, reviews):
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    cfg = StudyConfig.from_dict({
        "name": "typed",
        "data": {"source": {"kind": "csv", "path": str(tmp_path / "reviews.csv")}, "text": "review", "label": "score",
                 "slices": ["product"]},
        "backbones": [tiny_bert],
        "strategies": ["majority", "tfidf_logreg", "linear_probe", {"finetune": {"trainable_layers": 1}}],
        "train": {"epochs": 1, "batch_size": 16, "max_length": 32},
        "eval": {"seeds": 2, "bootstrap": 100, "fractions": [0.5], "costs": [[0, 1], [5, 0]],
                 "gates": ["macro_f1 >= 0.5", "beats: majority"]},
        "output_dir": str(tmp_path / "runs"),
    })
    run = Study(cfg, progress=False).run()
    assert isinstance(run.results, StudyResults)
    assert unknown_keys(run.results) == []
    saved = load_results(run.run_dir)
    assert saved.schema_version == SCHEMA_VERSION
    assert unknown_keys(saved) == []
    assert saved.to_dict() == json.loads((run.run_dir / "results.json").read_text())
    assert saved.learning_curve is not None and saved.costs is not None and saved.slices
    assert run.metric("linear_probe", "macro_f1") == saved.strategies["linear_probe"].test["macro_f1"].value


def test_a_newer_or_malformed_results_file_is_refused_with_what_to_do(tmp_path):
    raw = json.loads((LEGACY / "validation_study.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps({**raw, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ArtifactError, match="upgrade graftlab"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({**raw, "strategies": "none"}))
    with pytest.raises(ArtifactError, match="strategies"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="JSON object"):
        load_results(tmp_path)


def test_records_keep_the_read_only_dict_interface_of_earlier_releases():
    results = as_results(json.loads((LEGACY / "validation_study.json").read_text()))
    assert results["winner"] == results.winner
    assert results["strategies"][results.winner]["test"]["macro_f1"]["value"] == results.champion.test["macro_f1"].value
    assert "bakeoff" not in results and results.get("bakeoff") is None
    assert set(results.keys()) >= {"winner", "strategies", "gates"}
