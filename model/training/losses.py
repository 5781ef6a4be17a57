"""Training losses over a batch of lexical vectors.

Notation: ``s`` is ``(batch, vocab)`` non-negative word weights of N samples,
``s̄_j = Σ_i s_ij / N`` the mean activation of word j.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def info_nce(similarity: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Symmetric contrastive loss; row i of ``similarity`` (N, N) matches column i.

    ``L = (CE(sim / t, diag) + CE(sim.T / t, diag)) / 2``.
    """
    targets = torch.arange(similarity.shape[0], device=similarity.device)
    logits = similarity / temperature
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def flops(s: torch.Tensor) -> torch.Tensor:
    """SPLADE's FLOPs regulariser: ``Σ_j s̄_j²``."""
    return s.mean(dim=0).pow(2).sum()


def overuse(s: torch.Tensor) -> torch.Tensor:
    """LexVLA's overuse penalty: ``V Σ_j (s̄_j / Σ_k s̄_k) s̄_j²``.

    Each word's squared mean activation is weighted by its share of all activation,
    so frequently used words are penalised more than rare, specific ones.
    """
    mean = s.mean(dim=0)  # (vocab,)
    total = mean.sum().clamp(min=1e-12)
    return s.shape[1] * (mean / total * mean.pow(2)).sum()


def distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL from the teacher's to the student's in-batch match distributions.

    ``student``/``teacher``: (N, N) similarity logits (already divided by their
    temperatures); each row (image->text) and each column (text->image) is a softmax
    over the batch: ``(KL(softmax(t) || softmax(s)) + KL(softmax(t.T) || softmax(s.T))) / 2``.
    """

    def kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.kl_div(
            F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), log_target=True, reduction="batchmean"
        )

    return (kl(student, teacher) + kl(student.T, teacher.T)) / 2


def caption_words(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Which words the captions of an image use, predicted from its logits: the listwise
    cross-entropy ``-Σ_j t_ij log softmax(z_i)_j`` averaged over the batch, where ``t_i``
    is the distribution of the image's captions' own words (``z``, ``t``: (batch, vocab)).
    """
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def search_info_nce(
    image_w: torch.Tensor,
    text_w: torch.Tensor,
    truncate: Callable[[torch.Tensor, str], torch.Tensor],
    temperature: float,
) -> torch.Tensor:
    """InfoNCE on what search scores: each side's query top-k against the other side's
    document top-k (``truncate(weights, role)``, e.g. ``LexVLA.truncate``).

    ``image_w``/``text_w``: (N, vocab); pair i is row i of both.
    """
    i2t = truncate(image_w, "query") @ truncate(text_w, "document").T
    t2i = truncate(text_w, "query") @ truncate(image_w, "document").T
    return (info_nce(i2t, temperature) + info_nce(t2i.T, temperature)) / 2


REGULARISERS = {"overuse": overuse, "flops": flops}


def sparsity_penalty(regulariser: str, image_w: torch.Tensor, text_w: torch.Tensor) -> torch.Tensor:
    """``REGULARISERS[regulariser]`` of a batch's image and caption weights, summed."""
    penalty = REGULARISERS[regulariser]
    return penalty(image_w) + penalty(text_w)
