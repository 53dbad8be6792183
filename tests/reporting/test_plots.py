import base64
import math

import pytest

from graftlab.core.errors import ArtifactError
from graftlab.core.results import Comparison, LearningCurve, SliceResult
from graftlab.reporting import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(b64):
    data = base64.b64decode(b64, validate=True)
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_every_plot_returns_a_base64_png(results):
    winner = results.champion
    histories = {n: s.history for n, s in results.strategies.items() if s.history}
    cal = winner.calibration
    figures = [
        plots.forest_plot(results.comparisons),
        plots.training_curves(histories),
        plots.confusion_matrix_plot(winner.confusion_matrix, results.label_names),
        plots.reliability_diagram(cal.reliability_before, cal.reliability_after),
        plots.learning_curve_plot(results.learning_curve),
        plots.slices_plot(results.slices),
        plots.bakeoff_plot(results.bakeoff),
    ]
    assert all(isinstance(f, str) and _is_png(f) for f in figures)


def test_plots_draw_the_dicts_of_results_json_as_their_records(binary_results):
    """A reader of an older results.json passes dicts; the figures are those of the records."""
    r = binary_results
    assert plots.forest_plot([c.to_dict() for c in r.comparisons]) == plots.forest_plot(r.comparisons)
    assert plots.learning_curve_plot(r.learning_curve.to_dict()) == plots.learning_curve_plot(r.learning_curve)
    assert plots.slices_plot([s.to_dict() for s in r.slices]) == plots.slices_plot(r.slices)
    assert plots.bakeoff_plot(r.bakeoff.to_dict()) == plots.bakeoff_plot(r.bakeoff)


def test_a_dict_that_is_not_a_results_section_is_refused():
    with pytest.raises(ArtifactError, match="Comparison"):
        plots.forest_plot([{"a": "x", "b": "y", "diff": None}])


def test_plots_return_none_when_there_is_nothing_to_draw():
    assert plots.forest_plot([]) is None
    assert plots.forest_plot([Comparison(a="x", b="y", diff=math.nan, ci_low=math.nan, ci_high=math.nan)]) is None
    assert plots.training_curves({}) is None
    assert plots.training_curves({"x": [[]]}) is None
    assert plots.confusion_matrix_plot([[1, 2, 3]], ["a"]) is None
    assert plots.reliability_diagram(None, None) is None
    assert plots.learning_curve_plot(LearningCurve(metric="macro_f1")) is None
    assert plots.slices_plot([SliceResult(slice_column="c", slice="s", n=0, metric="macro_f1", value=math.nan)]) is None


def test_partial_inputs_still_draw():
    # a single-seed history, a reliability curve without counts, a learning curve without CIs or spread
    assert _is_png(plots.training_curves({"probe": [{"step": 1, "val_accuracy": 0.5, "train_loss": 0.7},
                                                    {"step": 2, "val_accuracy": 0.6, "train_loss": 0.5}]},
                                         metric="val_macro_f1"))
    assert _is_png(plots.reliability_diagram({"confidence": [0.6, 0.9], "accuracy": [0.5, 0.95]}))
    assert _is_png(plots.learning_curve_plot({"metric": "accuracy", "points": {
        "a": [{"size": 8, "n_train": 16, "mean": 0.6}, {"size": "all", "n_train": 90, "mean": 0.8}]}}))
    assert _is_png(plots.confusion_matrix_plot([[5, 0], [0, 0]], None))


def test_plots_leave_matplotlib_global_state_alone():
    matplotlib = pytest.importorskip("matplotlib")
    backend, font_size = matplotlib.get_backend(), matplotlib.rcParams["font.size"]
    plots.forest_plot([{"a": "w", "b": "x", "diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.01}])
    assert matplotlib.get_backend() == backend
    assert matplotlib.rcParams["font.size"] == font_size
