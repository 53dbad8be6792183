"""The one batched, length-sorted inference helper that logits, embeddings and prefix states go through."""

import numpy as np
import torch

from graftlab.backbones.base import EncodedSet, batched_outputs, length_sorted_batches


def _set(lengths):
    items = [list(range(n)) for n in lengths]
    return EncodedSet(items, None, np.asarray(lengths), lambda xs: {"n": torch.tensor([len(x) for x in xs])})


def test_batches_run_longest_first_and_cover_every_row_once():
    lengths = [3, 9, 1, 9, 5, 2, 7]
    batches = [b.tolist() for b in length_sorted_batches(np.asarray(lengths), 3)]
    assert batches == [[1, 3, 6], [4, 0, 5], [2]]  # ties keep input order (stable)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_outputs_come_back_in_input_order():
    data = _set([3, 9, 1, 9, 5, 2, 7])
    seen = []

    def fn(batch):
        seen.append(batch["n"].tolist())
        return torch.stack([batch["n"], -batch["n"]], dim=1).double()  # (batch, 2)

    out = batched_outputs(data, fn, batch_size=2)
    assert out.dtype == np.float32 and out.shape == (7, 2)
    assert out[:, 0].tolist() == [3, 9, 1, 9, 5, 2, 7]
    assert seen == [[9, 9], [7, 5], [3, 2], [1]]  # similar lengths share a batch


def test_an_empty_set_gives_the_width_it_is_told():
    data = _set([])
    assert batched_outputs(data, lambda b: b["n"][:, None], 4, width=5).shape == (0, 5)
    assert batched_outputs(data, lambda b: b["n"][:, None], 4).shape == (0, 0)
