"""In a study, the bake-off reports to the study's progress: each candidate's scoring is a trial, each phase a step."""

import io
import re

from graftlab.backbones import embedding_cache as ec
from graftlab.backbones import get_backbone
from graftlab.core.config import StudyConfig
from graftlab.core.progress import Progress
from graftlab.selection import run_bakeoff


def test_each_candidate_is_a_trial_of_the_study_progress(tiny_berts, splits, monkeypatch):
    monkeypatch.setattr(ec, "_MEMORY", {})
    cfg = StudyConfig.from_dict({"name": "t", "data": {}, "backbones": list(tiny_berts),
                                 "bakeoff": {"subset": 60, "folds": 3}, "train": {"max_length": 32}})
    out = io.StringIO()
    progress = Progress(True, file=out, terminal=False)
    run_bakeoff(cfg, *splits, progress=progress)
    lines = out.getvalue().splitlines()
    done = [line for line in lines if re.match(r"trial \d/2 done ", line)]
    assert [re.search(r"bake-off (\S+)", line).group(1) for line in done] == [get_backbone(p).card.name for p in tiny_berts]
    assert all("ETA" in line for line in done)
    assert any(line.startswith("step: bake-off: ") and "latency" in line for line in lines)
    assert progress.done == 2 and not progress.pending
