"""Resumable checkpoints: model (trainable part), best weights, optimizer, scheduler, RNG and loop state.

Tensors go to safetensors or ``torch.save`` of plain tensor dicts, read back with ``weights_only=True``;
everything else is JSON. The folder is written beside the old one and swapped in, so a kill mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..core.artifacts import load_json, save_json

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in trainer.trainable_state().items()}, str(tmp / "model.safetensors"))
    if trainer.early.best_state is not None:
        save_file({k: v.contiguous() for k, v in trainer.early.best_state.items()}, str(tmp / "best.safetensors"))
    torch.save(trainer.optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"torch_rng": torch.get_rng_state()}, tmp / "rng.pt")
    state = {
        "step": trainer.step,
        "epoch": trainer.epoch,
        "batch_pos": trainer.batch_pos,
        "batch_order": trainer.batch_order,
        "history": trainer.history,
        "stop_reason": trainer.stop_reason,
        "elapsed_s": trainer.elapsed(),
        "loss_sum": trainer._loss_sum,
        "loss_n": trainer._loss_n,
        "scheduler": trainer.scheduler.state_dict(),
        "numpy_rng": trainer.rng.bit_generator.state,
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
    }
    save_json(state, tmp / "state.json")
    old = path.with_name(path.name + ".old")
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(trainer: Trainer, path: Path) -> None:
    state = load_json(path / "state.json")
    trainer.model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    if (path / "best.safetensors").is_file():
        trainer.early.best_state = load_file(str(path / "best.safetensors"))
    trainer.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    torch.set_rng_state(torch.load(path / "rng.pt", weights_only=True)["torch_rng"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.step, trainer.epoch, trainer.batch_pos = state["step"], state["epoch"], state["batch_pos"]
    trainer.batch_order = state["batch_order"]
    trainer.history = state["history"]
    trainer.stop_reason = state["stop_reason"]
    trainer._elapsed_before = state["elapsed_s"]
    trainer._loss_sum, trainer._loss_n = state["loss_sum"], state["loss_n"]
    rng = np.random.default_rng()
    rng.bit_generator.state = state["numpy_rng"]
    trainer.rng = rng
    for cb, cb_state in zip(trainer.callbacks, state["callbacks"], strict=False):
        cb.load_state_dict(cb_state)
