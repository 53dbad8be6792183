"""``Study``: the whole protocol from a config — checks, baselines and strategies × seeds, evidence,
the winner packaged, report and decision record. ``graft study`` and ``Study.from_yaml(p).run()``."""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..backbones import get_backbone
from ..core.artifacts import load_json, save_json
from ..core.results import SCHEMA_VERSION, Refit, StudyResults, save_results
from ..core.results import load_results as _load_results
from ..core.config import StrategySpec, StudyConfig, load_config
from ..core.errors import ConfigError, GraftError
from ..core.progress import Progress, Task
from ..data.prepare import PreparedData, prepare_data
from ..evaluation import HEADLINE_METRICS, metrics_with_ci, paired_bootstrap, softmax
from ..packaging import export_model
from ..selection import check_license, run_bakeoff
from ..strategies import Strategy, load_predictor, make_strategy
from ..strategies.overrides import KNOBS, TrainOverrides, ablation_variants, train_config_for
from .curves import cost_report, learning_curve, size_label, subsample_train
from .outputs import monitoring_reference, write_predictions
from .robustness import robustness_report
from .aggregate import compare, gates_for, keep_preferred, select_winner, slices_for, summarise_strategy, transfer_gain
from .budget import Budget, ablation_tasks, curve_tasks, refit_task, seed_task
from .environment import environment
from .fewshot import (
    as_study_selection,
    combine,
    kfold_tasks,
    make_ctx_factory,
    recommend,
    select_by_kfold,
    selection_plan,
    typical_per_class,
)
from .result import StudyResult
from .trials import TrialKey, TrialRecord, load_trial, run_trial

__all__ = ["Study", "StudyResult"]


class Study:
    """A transfer-learning study defined by a :class:`StudyConfig`.

    Args:
        config: the validated config.
        frame, test_frame: DataFrames to use instead of the config's sources (Python API).
        progress: show progress bars.
    """

    def __init__(self, config: StudyConfig, *, frame: Any = None, test_frame: Any = None, progress: bool = True) -> None:
        self.config = config
        self.frame, self.test_frame = frame, test_frame
        self.progress = progress
        self._strategies: dict[str, tuple[Any, Strategy]] | None = None
        self._backbone = None
        #: set by :meth:`prepare` when the config lists no strategies: the defaults chosen for the data (regime, why)
        self.defaults: dict[str, Any] | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Study:
        """The study a YAML config file defines (validated; ``kwargs`` as for :class:`Study`).

        Raises:
            ConfigError: the file is missing or its config is not valid (the message names the key and the fix).
        """
        return cls(load_config(path), **kwargs)

    # -- preparation: everything that can fail before compute ---------------------------------------
    @property
    def strategies(self) -> dict[str, tuple[Any, Strategy]]:
        """Display name -> (spec, strategy), parameters validated: what the study runs, in order.

        Raises:
            ConfigError: a strategy's parameters are not valid, or a name is listed twice.
        """
        if self._strategies is None:
            out: dict[str, tuple[Any, Strategy]] = {}
            for spec in self.config.strategies:
                if spec.display_name in out:
                    raise ConfigError(f"Strategy {spec.display_name!r} is listed twice in 'strategies'; give one a 'label'.")
                out[spec.display_name] = (spec, make_strategy(spec.name, spec.params))
            self._strategies = out
        return self._strategies

    @property
    def backbone(self):
        """The backbone the study adapts (the config's first; after a bake-off, its winner), loaded once."""
        if self._backbone is None:
            self._backbone = get_backbone(self.config.backbones[0])
        return self._backbone

    def prepare(self, split_file: str | Path | None = None) -> PreparedData:
        """Validate strategies and backbone, then load, check and split the data (no training)."""
        strategies = self.strategies
        needs_backbone = any(s.uses_backbone for _, s in strategies.values())
        if needs_backbone:  # before any compute: a backbone whose license the config refuses never loads
            check_license(self.config, self.config.backbones, require_all=len(self.config.backbones) == 1)
        bb = self.backbone if needs_backbone else None
        prepared = prepare_data(
            self.config.data,
            length_fn=bb.lengths if bb is not None else None,
            max_length=self.config.train.max_length if bb is not None else None,
            frame=self.frame,
            test_frame=self.test_frame,
            split_file=split_file,
        )
        self.defaults = self._defaults_for_size(prepared)  # a config without strategies: what its data size and modality call for
        for _, strategy in self.strategies.values():  # a text-only strategy on images is refused before any compute
            strategy.check_data(prepared.train, bb)
        return prepared

    # -- the run -------------------------------------------------------------------------------------
    def run(self, resume: str | Path | None = None, prepared: PreparedData | None = None,
            on_start: Callable[[Path], None] | None = None) -> StudyResult:
        """Run every strategy × seed (skipping trials a resumed run already finished) and write the outputs.

        ``on_start(run_dir)`` is called once the run folder exists, before any training (``graft study`` prints it).
        With ``progress``, every trial is counted before it runs and shown with an ETA (:mod:`graftlab.core.progress`);
        the config's top-level ``time_budget_s`` leaves out optional work that does not fit (:mod:`.budget`).
        """
        with Progress(self.progress) as progress:
            self._progress, self._budget = progress, Budget(self.config.time_budget_s, progress)
            try:
                return self._run(resume, prepared, on_start)
            except OSError as e:  # writing into the run folder later (a full disk, a folder made read-only)
                out = Path(resume) if resume is not None else Path(self.config.output_dir)
                if e.filename is None or not Path(e.filename).resolve().is_relative_to(out.resolve()):
                    raise
                raise _unwritable_run_folder(Path(e.filename), e) from None

    def _run(self, resume: str | Path | None, prepared: PreparedData | None,
             on_start: Callable[[Path], None] | None) -> StudyResult:
        t_start = time.perf_counter()
        cfg = self.config
        if resume is not None:
            run_dir = Path(resume).resolve()  # its name is the run id: not "" for ".", nor a symlink's name
            if not (run_dir / "config.yaml").is_file():
                raise ConfigError(f"{run_dir} is not a graftlab run folder (no config.yaml); pass runs/<study>/<run-id>.")
            prepared = self.prepare(split_file=run_dir / "split.json")
        else:
            prepared = prepared or self.prepare()  # user errors surface before a run folder exists
            run_id = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
            run_dir = Path(cfg.output_dir) / cfg.name / run_id
            try:
                run_dir.mkdir(parents=True, exist_ok=False)
                (run_dir / "config.yaml").write_text(cfg.to_yaml())
                prepared.save_split(run_dir / "split.json")
            except OSError as e:
                raise _unwritable_run_folder(run_dir, e) from None
        if on_start is not None:
            on_start(run_dir)
        train, val, test = prepared.train, prepared.val, prepared.test
        defaults = self._defaults_for_size(prepared)
        strategies = self.strategies
        needs_backbone = any(s.uses_backbone for _, s in strategies.values())
        self._progress.plan(self._plan(strategies, prepared, run_dir))  # every trial counted before any runs
        bakeoff = None
        if needs_backbone and len(cfg.backbones) > 1:  # pick the backbone before committing compute to it
            bakeoff = run_bakeoff(cfg, train, val, progress=self._progress)
            save_json(bakeoff, run_dir / "bakeoff.json")
            # candidates are named by their card; map the winner back to the reference the config gave
            ref = next(r for r in cfg.backbones if get_backbone(r).card.name == bakeoff["winner"])
            self._backbone = get_backbone(ref)
        bb = self.backbone if needs_backbone else None

        trials: dict[str, list[TrialRecord]] = {}
        timings: dict[str, float] = {}
        failed: dict[str, dict[str, Any]] = {}  # strategy -> what the report says of its error
        errors: dict[str, Exception] = {}
        seeds = {name: self._seeds(strategy) for name, (_, strategy) in strategies.items()}
        for i in range(max(map(len, seeds.values()))):  # every strategy's first seed before any second: all are measured
            for name, (spec, strategy) in strategies.items():  # before a time budget weighs an extra seed
                if name in failed or i >= len(seeds[name]):
                    continue
                key = TrialKey(name, seeds[name][i])
                task = seed_task(name, key.seed, len(train), i, strategy.kind == "baseline")
                if task.kind == "extra seed" and not self._fits([task], [key], run_dir):
                    continue
                t0 = time.perf_counter()
                try:  # latency: the same architecture every seed, measured once
                    rec = self._trial(task, key, run_dir, partial(run_trial, key, spec, strategy, train, val, test, cfg, bb, run_dir,
                                                                  measure=cfg.eval.measures_latency and i == 0,
                                                                  progress=self.progress))
                except Exception as err:  # noqa: BLE001  one strategy that cannot run never costs the others their results
                    errors[name], failed[name] = err, _failure(err, key, run_dir)
                    trials.pop(name, None)  # its other seeds are left out too: the evidence pairs whole strategies
                    self._progress.drop_group(name)
                    continue
                finally:
                    timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 3)
                trials.setdefault(name, []).append(rec)
        if not trials:
            _raise_all_failed(errors)
        strategies = {n: v for n, v in strategies.items() if n not in failed}
        curve_trials, n_train, curve_failed = self._learning_curve_trials(strategies, prepared, bb, run_dir)
        if curve_trials:
            timings["learning_curve"] = round(sum(t.result["fit_seconds"] for by in curve_trials.values() for recs in by.values() for t in recs), 3)

        ablation, ablation_failed = self._ablation_trials(strategies, trials, prepared, bb, run_dir)
        if ablation:
            timings["ablation"] = round(sum(t.result["fit_seconds"] for recs in ablation.values() for t in recs), 3)

        self._progress.step("evidence: bootstrap CIs, paired tests and selection")
        results = self._evidence(trials, prepared, bb, run_dir, failed)
        refit = self._refit(results, trials, prepared, bb, run_dir)
        if refit is not None:
            timings["refit"] = refit.result["fit_seconds"]
        else:
            self._progress.drop([refit_task(0)])
        if resume is not None and (run_dir / "results.json").is_file():  # a finished run resumed: same evidence, same date
            results.created = _load_results(run_dir / "results.json").created or results.created
        if defaults is not None:
            results.strategy_defaults = defaults
            results.selection.why = f"{defaults['why']} {results.selection.why}"
        if ablation or ablation_failed:
            results.ablation = self._ablation_rows(trials, ablation, prepared) + ablation_failed
        if bakeoff is not None:
            results.bakeoff = bakeoff
            timings["bakeoff"] = bakeoff["seconds"]
        if n_train:
            curve_trials["all"] = trials
            n_train["all"] = len(train)
            sizes = sorted(n_train, key=n_train.get)
            results.learning_curve = {**learning_curve(curve_trials, test, cfg, sizes, n_train), "failed": curve_failed}
        if cfg.eval.costs is not None:
            results.costs = cost_report(cfg.eval.costs, trials, val, test)
        if cfg.eval.robustness:
            w = results.champion
            shipped = next(t for t in trials[results.winner] if t.key.seed == w.shipped_seed)
            results.robustness = robustness_report(load_predictor(shipped.model_dir), list(test.inputs), test.labels,
                                                   cfg.eval.metric, w.calibration.temperature, shipped.test_logits, cfg.seed,
                                                   progress=self._progress)
        total_s = round(time.perf_counter() - t_start, 3)
        budget = self._budget.record(total_s)
        results.timings = {"total_s": total_s, "per_strategy_s": timings, **({"budget": budget} if budget else {})}
        if budget is not None and budget.dropped:  # fewer seeds or rows than the config asked for: the decision says so
            results.selection.why += f" {budget.reading}"
        self._write_outputs(results, trials, prepared, run_dir, bb, refit)
        if cfg.tracking.enabled:
            from ..tracking import attach_model_card, log_study

            self._progress.step("tracking: MLflow run and model registry")
            logged = run_dir / "tracking.json"
            if logged.is_file():  # a resumed run is logged once; the re-exported model gets its card back as it was
                record = load_json(logged)
                attach_model_card(results, run_dir, reproduce_ref=record.get("mlflow_run_id"))
                results.tracking = record
            else:
                results.tracking = log_study(results, run_dir, cfg)
            save_results(results, run_dir / "results.json")
        return StudyResult(run_dir, results, results.winner, results.gates_passed)

    def _learning_curve_trials(self, strategies, prepared: PreparedData, bb, run_dir: Path):
        """Every strategy × seed on smaller training sets (``eval.fractions``; 1.0 is the main run). A point
        (strategy, size) whose trial raises is left out of the curve and listed, with its error, in the failures."""
        by_size: dict[str, dict[str, list[TrialRecord]]] = {}
        n_train: dict[str, int] = {}
        failed: list[dict[str, Any]] = []
        for size in self._curve_sizes():
            label = size_label(size)
            # every seed draws as many rows per class; when that is all rows, every seed trains on the same data
            n_train[label] = len(subsample_train(prepared.train, size, self.config.seed))
            varies = n_train[label] < len(prepared.train)
            for name, (spec, strategy) in strategies.items():
                seeds = self._seeds(strategy, data_varies=varies)
                tasks = curve_tasks(name, label, seeds, n_train[label])
                if not self._fits(tasks, [TrialKey(name, s, size=label) for s in seeds], run_dir, f"learning curve {label}: {name}"):
                    continue
                recs, failure = self._side_trials(spec, strategy, name, label, seeds, tasks,
                                                  lambda seed: subsample_train(prepared.train, size, seed), prepared, bb, run_dir)
                if failure is None:
                    by_size.setdefault(label, {})[name] = recs
                else:  # e.g. too few examples at this size for the strategy: the curve keeps its other points
                    failed.append({"strategy": name, "size": label, **failure})
        return by_size, n_train, failed

    def _side_trials(self, spec, strategy: Strategy, name: str, size: str, seeds: list[int], tasks: list[Task],
                     train_for: Callable[[int], Any], prepared: PreparedData, bb,
                     run_dir: Path) -> tuple[list[TrialRecord], dict[str, Any] | None]:
        """A learning-curve point's or an ablation variant's trials (models not kept), each seed training on
        ``train_for(seed)`` and shown as its task: (records, None), or ([], what ``_failure`` says) when one raises."""
        recs = []
        for seed, task in zip(seeds, tasks, strict=True):
            key = TrialKey(name, seed, size=size)
            try:
                recs.append(self._trial(task, key, run_dir, partial(
                    run_trial, key, spec, strategy, train_for(seed), prepared.val, prepared.test, self.config, bb, run_dir,
                    keep_model=False, measure=False, progress=self.progress)))
            except Exception as err:  # noqa: BLE001  as for a main trial: it costs the study only this point or row
                self._progress.drop(tasks)  # its other seeds will not run
                return [], _failure(err, key, run_dir)
        return recs, None

    def _trial(self, task: Task, key: TrialKey, run_dir: Path, fit: Callable[[], TrialRecord]) -> TrialRecord:
        """One trial under the progress display: the record an earlier run left (``--resume``), else ``fit()``."""
        with self._progress.trial(task) as timing:
            rec = load_trial(key, run_dir)
            if rec is None:
                return fit()
            timing.finished_before(rec.result["fit_seconds"] + rec.result.get("predict_seconds", 0.0))
            return rec

    def _fits(self, tasks: list[Task], keys: list[TrialKey], run_dir: Path, what: str | None = None) -> bool:
        """Whether optional work runs: an earlier run finished it, or the time budget has room for it."""
        return all((k.folder(run_dir) / "result.json").is_file() for k in keys) or self._budget.admit(tasks, what)

    def _curve_sizes(self) -> list[float]:
        return sorted(f for f in self.config.eval.fractions if f != 1.0)

    def _plan(self, strategies, prepared: PreparedData, run_dir: Path) -> list[Task]:
        """Every trial the run starts, counted before it starts, in the order it runs: strategies × seeds (each first
        seed first), learning-curve points, ablation variants, k-fold fits and the refit."""
        cfg, train = self.config, prepared.train
        seeds = {name: self._seeds(strategy) for name, (_, strategy) in strategies.items()}
        tasks = [seed_task(name, seeds[name][i], len(train), i, s.kind == "baseline")
                 for i in range(max(map(len, seeds.values()))) for name, (_, s) in strategies.items() if i < len(seeds[name])]
        for size in self._curve_sizes():
            rows = len(subsample_train(train, size, cfg.seed))
            for name, (_, strategy) in strategies.items():
                tasks += curve_tasks(name, size_label(size), self._seeds(strategy, data_varies=rows < len(train)), rows)
        for name, _, variant, _, same in self._ablation_variants(strategies):
            if same is None:
                tasks += ablation_tasks(name, variant.display_name, seeds[name], len(train))
        if self._selects_by_kfold(selection_plan(train, prepared.val, ordered_by=cfg.data.split.order_by)):
            labeled = combine(train, prepared.val)
            if not (run_dir / "selection.json").is_file():  # a resumed run reuses its k-fold result
                tasks += kfold_tasks(list(strategies), labeled)
            if cfg.eval.refit and cfg.data.modality == "text" and any(s.fits_without_val for _, s in strategies.values()):
                tasks.append(refit_task(len(labeled)))
        return tasks

    def _defaults_for_size(self, prepared: PreparedData) -> dict[str, Any] | None:
        """A config without ``strategies`` gets the measured defaults for its data size and modality
        (``fewshot.recommend``: on text the contrastive strategy below 50 examples per class), with the majority
        baseline and the one without pretraining (TF-IDF on text, pixels on images) always. A training setting the
        config's ``train`` section gives wins over the defaults' own."""
        if "strategies" in self.config.model_fields_set:
            return None
        modality = self.config.data.modality
        rec = recommend(max(1, typical_per_class(prepared.train)), modality)  # the median class: one rare class is not few-shot
        baseline = "pixel_logreg" if modality == "image" else "tfidf_logreg"
        specs = [StrategySpec(name=n) for n in ("majority", baseline) if n not in {s["name"] for s in rec["strategies"]}]
        for s in rec["strategies"]:
            params = {k: v for k, v in s["params"].items() if k not in self.config.train.model_fields_set}
            specs.append(StrategySpec(name=s["name"], params=params, label=s["name"] if params else None))
        self._strategies = {spec.display_name: (spec, make_strategy(spec.name, spec.params)) for spec in specs}
        names = "majority and TF-IDF" if modality == "text" else "majority and pixel"
        return {"regime": rec["regime"], "strategies": [spec.display_name for spec in specs], "evidence": rec["evidence"],
                "why": f"The config lists no strategies, so the study ran the measured defaults for {modality} data of its "
                       f"size ({rec['regime']}; evidence: {rec['evidence']}) with the {names} baselines."}

    def _recipe(self, strategy: Strategy) -> tuple[str, str]:
        """What a training strategy effectively runs: its own parameters and its resolved training settings
        (focal-only loss settings do not matter to cross-entropy)."""
        cfg = train_config_for(self.config.train, strategy.params)
        if cfg.loss.kind == "ce":
            cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"gamma": 2.0, "alpha": None})})
        own = strategy.params.model_dump(mode="json", exclude=set(TrainOverrides.model_fields))
        return strategy.name, json.dumps([own, cfg.model_dump(mode="json")], sort_keys=True)

    def _ablation_trials(self, strategies, trials: dict[str, list[TrialRecord]], prepared: PreparedData, bb, run_dir: Path
                         ) -> tuple[dict[tuple[str, str], list[TrialRecord]], list[dict[str, Any]]]:
        """Each strategy with each enabled knob turned back to its default, on the same seeds (``eval.ablation``).
        A variant that another configured strategy already runs (finetune-2-focal without focal = finetune-2)
        reuses that strategy's trials. A variant whose trial raises gets a results row saying so instead."""
        cfg = self.config
        out: dict[tuple[str, str], list[TrialRecord]] = {}
        failed: list[dict[str, Any]] = []
        for name, knob, variant, vstrategy, same in self._ablation_variants(strategies):
            seeds = [t.key.seed for t in trials[name]]  # the seeds the strategy ran (a time budget may have left some out)
            if same is not None and [t.key.seed for t in trials[same]] == seeds:
                out[(name, knob)] = trials[same]
                continue
            tasks = ablation_tasks(name, variant.display_name, seeds, len(prepared.train))
            planned = ablation_tasks(name, variant.display_name, self._seeds(strategies[name][1]), len(prepared.train))
            self._progress.drop([t for t in planned if t not in tasks])
            keys = [TrialKey(variant.display_name, s, size="ablation") for s in seeds]
            if not self._fits(tasks, keys, run_dir, f"ablation: {variant.display_name}"):
                continue
            recs, failure = self._side_trials(variant, vstrategy, variant.display_name, "ablation", seeds, tasks,
                                              lambda _: prepared.train, prepared, bb, run_dir)
            if failure is None:
                out[(name, knob)] = recs
            else:
                failed.append({"strategy": name, "knob": knob, "without": KNOBS[knob], "variant": variant.display_name,
                               "metric": cfg.eval.metric, **failure})
        return out, failed

    def _ablation_variants(self, strategies) -> list[tuple[str, str, StrategySpec, Strategy, str | None]]:
        """(strategy, knob, variant spec, variant strategy, the configured strategy that already runs the variant or
        None) for each enabled knob of each strategy with training knobs (``eval.ablation``)."""
        cfg = self.config
        if not cfg.eval.ablation:
            return []
        recipes = {self._recipe(s): n for n, (_, s) in strategies.items() if isinstance(s.params, TrainOverrides)}
        out = []
        for name, (spec, strategy) in strategies.items():
            if not isinstance(strategy.params, TrainOverrides):  # no training knobs (baselines, probe, contrastive)
                continue
            for knob, params in ablation_variants(spec.name, spec.params, cfg.train).items():
                vstrategy = make_strategy(spec.name, params)
                variant = StrategySpec(name=spec.name, params=params, label=f"{name} without {knob}")
                out.append((name, knob, variant, vstrategy, recipes.get(self._recipe(vstrategy))))
        return out

    def _ablation_rows(self, trials: dict[str, list[TrialRecord]], ablation: dict[tuple[str, str], list[TrialRecord]],
                       prepared: PreparedData) -> list[dict[str, Any]]:
        """Paired difference (strategy as configured − the same without one knob): what each knob adds."""
        rows = []
        for (name, knob), recs in ablation.items():
            res = compare(trials[name], recs, prepared.test, self.config)
            rows.append({"strategy": name, "knob": knob, "without": KNOBS[knob], "variant": recs[0].key.strategy,
                         "metric": self.config.eval.metric, **{k: res[k] for k in ("diff", "ci_low", "ci_high", "p_value")},
                         "accuracy": {k: res["accuracy"][k] for k in ("diff", "ci_low", "ci_high", "p_value")}})
        return rows

    def _select(self, summaries: dict[str, dict[str, Any]], trials: dict[str, list[TrialRecord]], prepared: PreparedData,
                bb, run_dir: Path) -> tuple[str, str | None, dict[str, Any]]:
        """The winner: by the validation split, or by repeated stratified k-fold on train+val when the training
        split is too small for its validation split to rank strategies (``eval.selection``; docs/fewshot.md). Either
        way a lead over the measured default order's preferred strategy must be significant to override it."""
        cfg = self.config
        plan = selection_plan(prepared.train, prepared.val, ordered_by=cfg.data.split.order_by)
        mode = cfg.eval.selection
        first = recommend(max(1, plan["n_per_class"]), cfg.data.modality)["preferred"]
        candidates = [(name, s) for name, (_, s) in self.strategies.items() if name in summaries]
        preferred = next((n for n, s in candidates if s.name == first), None)
        if not self._selects_by_kfold(plan):
            winner, runner_up, selection = keep_preferred(select_winner(summaries, cfg.eval.metric)[2], preferred, trials,
                                                          prepared.val, cfg)
            reason = "The config asks for validation-split selection (eval.selection: validation)." if mode == "validation" else plan["why"]
            selection["why"] = f"{reason} {selection['why']}"
            return winner, runner_up, selection
        if mode == "kfold" and not plan["use_kfold"]:
            plan = {**plan, "why": "The config asks for k-fold selection (eval.selection: kfold)."}
        saved = run_dir / "selection.json"  # k-fold fits are not trials: a resumed run reuses the result
        if saved.is_file():
            kfold = load_json(saved)
        else:
            kfold = select_by_kfold(candidates, combine(prepared.train, prepared.val), make_ctx_factory(cfg.train, bb),
                                    metric=cfg.eval.metric, seed=cfg.seed, preferred=preferred, costs=summaries,
                                    progress=self._progress)
            save_json(kfold, saved)
        return as_study_selection(kfold, plan)

    def _selects_by_kfold(self, plan: dict[str, Any]) -> bool:
        """Whether the winner is chosen by k-fold on train+val (``eval.selection``; ``auto``: the selection plan's call)."""
        mode = self.config.eval.selection
        return mode == "kfold" or (mode == "auto" and plan["use_kfold"])

    def _refit(self, results: StudyResults, trials: dict[str, list[TrialRecord]], prepared: PreparedData, bb,
               run_dir: Path) -> TrialRecord | None:
        """After k-fold selection (``eval.refit``), the winner fitted once more on every labeled example (train+val)
        with its shipped seed, as scikit-learn's search estimators refit: with 8 examples per class the validation
        split holds a fifth of the data and, since k-fold ranked the strategies, chooses nothing. Its test scores and
        its paired difference from the same seed trained on the training split go to ``selection.refit``; the trials
        stay the evidence over seeds. None (and a note why) when the winner needs validation rows to train."""
        cfg, sel = self.config, results.selection
        if not cfg.eval.refit or sel.selection_method != "repeated stratified k-fold":
            return None
        if cfg.data.modality != "text":  # the head without validation rows was measured on text (bench/fewshot_heads.py)
            sel.refit = Refit(done=False, why="the refit is measured on text only; an image study packages the model "
                                              "trained on the training split.")
            return None
        winner = results.winner
        spec, strategy = self.strategies[winner]
        w = results.champion
        if not strategy.fits_without_val:
            sel.refit = Refit(done=False, why=f"{strategy.name} needs a validation split to train, so the packaged model "
                                              "is the one trained on the training split.")
            return None
        everything = combine(prepared.train, prepared.val)
        no_val = prepared.val.subset(np.array([], dtype=np.int64))
        key = TrialKey(winner, w.shipped_seed, size="refit")
        rec = self._trial(refit_task(len(everything), winner), key, run_dir, partial(
            run_trial, key, spec, strategy, everything, no_val, prepared.test, cfg, bb, run_dir, measure=False,
            progress=self.progress))
        trained = next(t for t in trials[winner] if t.key.seed == key.seed)
        test, ev = prepared.test, cfg.eval
        proba = softmax(rec.test_logits)
        scores = metrics_with_ci(test.labels, proba, ev.scored_metrics, n_boot=ev.bootstrap, confidence=ev.confidence, seed=cfg.seed)
        diff = paired_bootstrap(test.labels, proba, softmax(trained.test_logits), ev.metric, n_boot=ev.bootstrap,
                                confidence=ev.confidence, seed=cfg.seed)
        sel.refit = Refit(done=True, strategy=winner, seed=key.seed, n_train=len(everything), test=scores,
                          temperature=1.0,  # no held-out rows to fit one on
                          vs_training_split={k: diff[k] for k in ("diff", "ci_low", "ci_high", "p_value")})
        m = ev.metric
        sel.why += (f" The packaged model is {winner} fitted once more on all {len(everything)} labeled examples "
                       f"(train+val, seed {key.seed}), as scikit-learn's search estimators refit: test {m} "
                       f"{scores[m]['value']:.3f} [{scores[m]['ci_low']:.3f}, {scores[m]['ci_high']:.3f}], "
                       f"{diff['diff']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] against the same seed trained "
                       "on the training split; the comparisons above are of the training-split models.")
        return rec

    def _seeds(self, strategy: Strategy, data_varies: bool = False) -> list[int]:
        """Seeds to run: every configured seed, except for a deterministic strategy on one training set (one seed
        tells all). ``data_varies``: each seed draws its own training subsample (learning curves), so every seed
        counts, except for the majority class."""
        once = strategy.name == "majority" or (strategy.deterministic and not data_varies)
        return [self.config.seed + i for i in range(1 if once else self.config.eval.seeds)]

    def _evidence(self, trials: dict[str, list[TrialRecord]], prepared: PreparedData, bb, run_dir: Path,
                  failed: dict[str, dict[str, Any]]) -> StudyResults:
        """The evidence over every strategy's trials, the winner and why, gates and slices: the study's typed results."""
        cfg = self.config
        val, test = prepared.val, prepared.test
        summaries = {name: summarise_strategy(name, recs, val, test, cfg) for name, recs in trials.items()}
        winner, runner_up, selection = self._select(summaries, trials, prepared, bb, run_dir)
        comparisons = [{"a": winner, "b": other, **compare(trials[winner], trials[other], test, cfg)}
                       for other in summaries if other != winner]
        transfer = [s for s in summaries if summaries[s]["kind"] == "transfer"]
        best_transfer = next((s for s in selection["ranking"] if s in transfer), None)
        gain = transfer_gain(best_transfer, trials, test, cfg, summaries)
        w = summaries[winner]
        shipped = next(t for t in trials[winner] if t.key.seed == w["shipped_seed"])
        gates = gates_for(cfg, w, {c["b"]: c for c in comparisons}, winner, failed)
        gates_passed = all(g["passed"] for g in gates)
        return StudyResults(
            schema_version=SCHEMA_VERSION,
            study=cfg.name,
            run_id=run_dir.name,
            run_dir=str(run_dir),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            graftlab_version=__version__,
            config=cfg.to_dict(),
            data={
                "fingerprint": prepared.fingerprint,
                "label_names": prepared.label_names,
                "splits": {k: len(v) for k, v in prepared.splits.items()},
                "class_counts": {k: dict(zip(v.label_names, v.class_counts().tolist(), strict=True)) for k, v in prepared.splits.items()},
                "summary": prepared.summary,
                "checks": [c.to_dict() for c in prepared.checks],
                "license": cfg.data.license,
            },
            backbone=bb.card.to_dict() if bb is not None else None,
            environment=environment(),
            headline_metric=cfg.eval.metric,
            higher_is_better=HEADLINE_METRICS[cfg.eval.metric].higher_is_better,
            seeds=[cfg.seed + i for i in range(cfg.eval.seeds)],
            strategies=summaries,
            failed=failed,
            winner=winner,
            runner_up=runner_up,
            selection=selection,
            comparisons=comparisons,
            transfer_gain=gain,
            gates=gates,
            slices=slices_for(shipped, test, cfg, w["calibration"]["temperature"]),
            exit={"gates_passed": gates_passed},
        )

    def _write_outputs(self, results: StudyResults, trials: dict[str, list[TrialRecord]], prepared: PreparedData,
                       run_dir: Path, bb, refit: TrialRecord | None = None) -> None:
        """The packaged model (the refit on every labeled example when there is one, else the winner's shipped seed),
        predictions, results.json, report and decision record."""
        from ..reporting import render_report, write_decision_record, write_test_errors

        winner = results.winner
        w = results.champion
        trained = next(t for t in trials[winner] if t.key.seed == w.shipped_seed)
        shipped = refit or trained
        predictor = load_predictor(shipped.model_dir)
        predictor.label_names = prepared.label_names
        meta = {
            "name": self.config.tracking.register_as or self.config.name,
            "study": self.config.name,
            "run_id": results.run_id,
            "strategy": winner,
            "seed": w.shipped_seed,
            # a refit has no held-out rows to fit a temperature on: its logistic head's own probabilities
            "temperature": 1.0 if refit is not None else w.calibration.temperature,
            "backbone": results.backbone.to_dict() if results.backbone is not None else None,
            "data_fingerprint": prepared.fingerprint,
            "metrics": {m: ci.to_dict() for m, ci in (results.selection.refit.test if refit is not None else w.test).items()},
            "refit_on_train_val": refit is not None,
            "gates": [g.to_dict() for g in results.gates],
            "max_length": self.config.train.max_length,
            "modality": prepared.test.modality,
            "input_column": self.config.data.image or self.config.data.text,  # what `graft predict --file` reads
        }
        self._progress.step("packaging the model")
        # the monitoring reference comes from validation rows the model did not train on: the training-split model's
        export_model(predictor, run_dir / "model", meta, reference=monitoring_reference(trained, prepared, bb, w, self.config.train.max_length))
        results.model_dir = str(run_dir / "model")
        self._explanations(results, predictor, shipped, prepared, meta["temperature"])
        self._progress.step("predictions, report and decision record")
        write_predictions(trials, prepared, run_dir)
        test = prepared.test  # the shipped seed's errors, with the probabilities it serves (its temperature)
        write_test_errors(run_dir, test.ids, test.inputs, test.labels,
                          softmax(trained.test_logits, w.calibration.temperature), prepared.label_names)
        save_results(results, run_dir / "results.json")
        render_report(results, run_dir)
        write_decision_record(results, run_dir)
        for recs in trials.values():  # only the shipped model is kept; every trial keeps its logits
            for t in recs:
                if t.key != shipped.key:
                    shutil.rmtree(t.model_dir, ignore_errors=True)

    def _explanations(self, results: StudyResults, predictor, shipped: TrialRecord, prepared: PreparedData, temperature: float) -> None:
        """Explained example predictions for the report (texts or images) and class-associated words (texts)."""
        method = self.config.eval.explain
        test = prepared.test
        images = test.modality == "image"
        if method == "off" or not len(test) or not (images or isinstance(test.inputs[0], str)):
            return
        from ..explain import class_tokens, report_examples

        self._progress.step(f"explanations of example predictions ({method})")
        proba = softmax(shipped.test_logits, temperature)
        try:
            results.explanations = report_examples(predictor, list(test.inputs), test.labels, proba, prepared.label_names, method=method)
            if not images:  # words have no counterpart in pixels
                results.class_tokens = class_tokens(list(test.inputs), proba, prepared.label_names)
        except GraftError as err:  # an explanation that cannot be made never costs the study its results
            results.explanations_error = str(err)


def _unwritable_run_folder(path: Path, err: OSError) -> ConfigError:
    """The user error for an ``output_dir`` the study cannot write (a file, /proc, /sys, read-only, full)."""
    return ConfigError(
        f"Cannot write the run folder {path}: {err.strerror or err}"
        f"{f' ({err.filename})' if err.filename and str(err.filename) != str(path) else ''}. "
        "Set output_dir in the config (or --set output_dir=PATH) to a folder you can write, such as runs, "
        "and check that its disk has space."
    )


def _failure(err: Exception, key: TrialKey, run_dir: Path) -> dict[str, Any]:
    """What the report says of a strategy that could not run; a bug's traceback goes to the trial's error.txt."""
    user = isinstance(err, GraftError)
    out: dict[str, Any] = {"seed": key.seed, "error": str(err) if user else f"{type(err).__name__}: {err}",
                           "type": type(err).__name__, "user_error": user}
    if not user:
        folder = key.folder(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text("".join(traceback.format_exception(err)))
        out["traceback"] = str(folder / "error.txt")
    return out


def _raise_all_failed(errors: dict[str, Exception]) -> None:
    """No strategy ran: the one error as it was raised (a bug first), or every strategy's message in one user error."""
    bug = next((e for e in errors.values() if not isinstance(e, GraftError)), None)
    if len(errors) == 1 or bug is not None:
        raise bug or next(iter(errors.values()))
    raise GraftError("No strategy could run. " + " ".join(f"{n}: {e}" for n, e in errors.items()))


def load_results(run_dir: str | Path) -> StudyResults:
    """The typed results of a run folder (or of a results.json), written by this release or an earlier one."""
    return _load_results(run_dir)
