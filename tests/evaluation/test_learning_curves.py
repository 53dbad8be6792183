"""The one-line learning-curve reading."""

from graftlab.evaluation import learning_curve_reading


def test_crossover_is_read_as_below_and_from():
    curve = {
        "linear_probe": [(8, 0.60), (16, 0.66), (32, 0.70), (64, 0.72)],
        "finetune-2": [(8, 0.50), (16, 0.62), (32, 0.74), (64, 0.80)],
    }
    assert learning_curve_reading(curve) == "linear_probe leads below 32/class; finetune-2 leads from 32/class up"


def test_single_leader_and_single_size():
    curve = {"lora": [(8, 0.7), (128, 0.9)], "probe": [(8, 0.6), (128, 0.8)]}
    assert learning_curve_reading(curve) == "lora leads at every size (8-128/class)"
    assert learning_curve_reading({"lora": [(16, 0.7)]}) == "lora leads at 16/class"


def test_three_runs_fractions_losses_and_ties():
    curve = {
        "a": [(0.1, 0.5), (0.25, 0.4), (0.5, 0.3), (1.0, 0.2)],
        "b": [(0.1, 0.6), (0.25, 0.3), (0.5, 0.35), (1.0, 0.25)],
    }
    # log-loss style: lower is better
    assert learning_curve_reading(curve, higher_is_better=False) == (
        "a leads at 10% of train; b leads at 25% of train; a leads at 50% of train to 100% of train"
    )
    tied = {"a": [(8, 0.70), (16, 0.8)], "b": [(8, 0.705), (16, 0.7)]}
    assert learning_curve_reading(tied, tie_tol=0.01) == "a and b tie below 16/class; a leads from 16/class up"


def test_nan_points_and_empty_curves():
    assert learning_curve_reading({}) == "no learning-curve points were measured"
    curve = {"a": [(8, float("nan")), (16, 0.5)], "b": [(8, 0.4), (16, 0.6, 0.55, 0.65)]}
    assert learning_curve_reading(curve) == "b leads at every size (8-16/class)"
