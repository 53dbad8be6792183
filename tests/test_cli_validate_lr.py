"""`graft validate` prints each neural strategy's learning rate and where it comes from (the one lr rule)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import make_tiny_bert


def test_validate_prints_each_rate_and_its_source(write_study, tmp_path):
    path = write_study()
    cfg = yaml.safe_load(path.read_text())
    cfg["backbones"] = [str(make_tiny_bert(tmp_path / "bert"))]  # 2 blocks
    cfg["strategies"] = ["majority", "linear_probe", "lora", {"lora": {"lr": 1e-3, "label": "lora-own"}},
                         {"finetune": {"trainable_layers": 1}}, "contrastive", "scratch"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(path), "--set", "train.lr=1e-4"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps long lines
    for line in ("learning rate of lora: 1e-3 = train.lr 1e-4 × 10 (lora's multiplier)",
                 "learning rate of lora-own: 1e-3 (lora.lr, set in its parameters)",
                 "learning rate of finetune[trainable_layers=1]: 2e-4 = train.lr 1e-4 × 2 blocks / 1 trainable",
                 "learning rate of contrastive: 4e-5 = train.lr 1e-4 × 0.4 (contrastive's multiplier)",
                 "learning rate of scratch: 2e-4 = train.lr 1e-4 × 2 (scratch's multiplier)"):
        assert line in out, line
    assert "learning rate of majority" not in out and "learning rate of linear_probe" not in out
