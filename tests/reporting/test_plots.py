import base64

import pytest

from graftlab.reporting import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(b64):
    data = base64.b64decode(b64, validate=True)
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_every_plot_returns_a_base64_png(results):
    winner = results["strategies"][results["winner"]]
    histories = {n: s["history"] for n, s in results["strategies"].items() if s.get("history")}
    cal = winner["calibration"]
    figures = [
        plots.forest_plot(results["comparisons"]),
        plots.training_curves(histories),
        plots.confusion_matrix_plot(winner["confusion_matrix"], results["data"]["label_names"]),
        plots.reliability_diagram(cal["reliability_before"], cal["reliability_after"]),
        plots.learning_curve_plot(results["learning_curve"]),
        plots.slices_plot(results["slices"]),
    ]
    assert all(isinstance(f, str) and _is_png(f) for f in figures)


def test_plots_return_none_when_there_is_nothing_to_draw():
    assert plots.forest_plot([]) is None
    assert plots.forest_plot([{"a": "x", "b": "y", "diff": None}]) is None
    assert plots.training_curves({}) is None
    assert plots.training_curves({"x": [[]]}) is None
    assert plots.confusion_matrix_plot([[1, 2, 3]], ["a"]) is None
    assert plots.reliability_diagram(None, None) is None
    assert plots.learning_curve_plot({"points": {}}) is None
    assert plots.slices_plot([{"value": None}]) is None


def test_partial_inputs_still_draw():
    # a single-seed history, a reliability curve without counts, a learning curve without n_train/CIs
    assert _is_png(plots.training_curves({"probe": [{"step": 1, "val_accuracy": 0.5, "train_loss": 0.7},
                                                    {"step": 2, "val_accuracy": 0.6, "train_loss": 0.5}]},
                                         metric="val_macro_f1"))
    assert _is_png(plots.reliability_diagram({"confidence": [0.6, 0.9], "accuracy": [0.5, 0.95]}))
    assert _is_png(plots.learning_curve_plot({"points": {"a": [{"size": 8, "mean": 0.6}, {"size": "all", "mean": 0.8}]}}))
    assert _is_png(plots.confusion_matrix_plot([[5, 0], [0, 0]], None))


def test_plots_leave_matplotlib_global_state_alone():
    matplotlib = pytest.importorskip("matplotlib")
    backend, font_size = matplotlib.get_backend(), matplotlib.rcParams["font.size"]
    plots.forest_plot([{"a": "w", "b": "x", "diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.01}])
    assert matplotlib.get_backend() == backend
    assert matplotlib.rcParams["font.size"] == font_size
