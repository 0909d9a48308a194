"""The light Fast AutoAugment search: single fold, density matching, random search, inside the clock.

The model trained so far (crop/flip only) is scored on the held-out split passed through each candidate
policy; a policy under which augmented held-out data still looks like data the model knows (low loss)
keeps the training distribution's density (Lim et al. 2019). No model is retrained. Unlike AutoCLINT's
estimator (the max over passes of the max AUC over 16-image chunks, i.e. mostly noise), each candidate is
scored by the mean class-balanced calibrated log-loss over the whole split and several draws, with the
same random numbers for every candidate, so differences come from the policies, not the draws. Whether
the split can rank candidates at all is measured, not assumed: the candidates are scored on two random
halves of the split, and where the halves disagree on their order (small splits) the search says so and
returns the default policy instead of a ranking it cannot make.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import rankdata

from autoclint.augment.policy import Policy, SubPolicy
from autoclint.metrics import calibrated_log_loss, safe_nauc

log = logging.getLogger("autoclint")

Evaluate = Callable[[Policy, int], np.ndarray]  # (policy, draw) -> held-out scores (N, C) under that policy


@dataclass(frozen=True)
class SearchCfg:
    sub_policies: int = 5  # per candidate (FAA's N_T = 5)
    draws: int = 3  # augmented passes per candidate; the same seeds for every candidate
    keep: int = 5  # best candidates whose sub-policies make the chosen policy (AutoCLINT: top 5, <= 15 subs)
    min_candidates: int = 8  # fewer cannot be ranked: the search does not start
    max_candidates: int = 100  # AutoCLINT's count
    min_agreement: float = 0.5  # Spearman correlation of the two halves' rankings needed to trust a ranking


@dataclass(frozen=True)
class Candidate:
    policy: Policy
    loss: float  # mean calibrated log-loss over the draws (lower: closer to what the model knows)
    nauc: float  # mean held-out NAUC over the draws
    half_losses: tuple[float, float] = field(repr=False, default=(0.0, 0.0))  # on each half of the split


@dataclass(frozen=True)
class SearchResult:
    policy: Policy  # what training uses from now on
    ranked: bool  # False: the estimator could not tell candidates apart and `policy` is the default
    baseline: Candidate | None  # the held-out split without augmentation (None: not searched)
    candidates: tuple[Candidate, ...]  # every candidate tried, in order
    seconds: float
    agreement: float  # Spearman correlation of the candidates' order on the two halves (nan: too few)

    affordable: int = 0  # candidates the time paid for when the search was planned
    min_candidates: int = 0  # fewer than this cannot be ranked

    def summary(self) -> str:
        if self.baseline is None:
            return (f"not searched: the time allowed pays for {max(self.affordable, 0)} candidates, fewer "
                    f"than the {self.min_candidates} a ranking needs: default policy")
        losses = [c.loss for c in self.candidates]
        spread = f", losses {min(losses):.4f}-{max(losses):.4f}" if losses else ""
        if self.ranked:
            verdict = "ranked"
        elif len(self.candidates) < self.min_candidates:
            verdict = f"stopped by the clock before {self.min_candidates} candidates: default policy"
        else:
            verdict = "the split cannot rank them: default policy"
        return (f"{len(self.candidates)} candidates in {self.seconds:.1f} s{spread} (no augmentation "
                f"{self.baseline.loss:.4f}), halves agree at rho={self.agreement:.2f}: {verdict}")


def candidates_affordable(seconds: float, pass_s: float, cfg: SearchCfg) -> int:
    """How many candidates `seconds` pays for, one held-out pass costing `pass_s` (measured inference)."""
    if pass_s <= 0:
        return cfg.max_candidates
    return int(min(cfg.max_candidates, seconds // (pass_s * cfg.draws) - 1))  # -1: the baseline


def score(evaluate: Evaluate, policy: Policy, labels: np.ndarray, multilabel: bool, draws: int,
          half: np.ndarray) -> Candidate:
    """Mean over draws of the loss and NAUC on the whole split, and of the loss on each half (`half`: a
    boolean mask of the first half)."""
    losses, naucs, halves = [], [], []
    for draw in range(draws):
        scores = evaluate(policy, draw)
        losses.append(calibrated_log_loss(labels, scores, multilabel))
        naucs.append(safe_nauc(labels, scores))
        halves.append([calibrated_log_loss(labels[h], scores[h], multilabel) for h in (half, ~half)])
    first, second = np.mean(halves, axis=0)
    return Candidate(policy, float(np.mean(losses)), float(np.mean(naucs)), (float(first), float(second)))


def split_halves(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random half of the rows, stratified by first class so both halves hold every class they can."""
    keys = np.where(labels.sum(1) > 0, labels.argmax(1), -1)
    half = np.zeros(len(labels), bool)
    for k in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == k))
        half[members[: (len(members) + rng.integers(0, 2)) // 2]] = True
    return half


def rank_agreement(candidates: list[Candidate]) -> float:
    """Spearman correlation between the candidates' losses on the two halves of the split."""
    if len(candidates) < 3:
        return float("nan")
    a = np.array([c.half_losses[0] for c in candidates])
    b = np.array([c.half_losses[1] for c in candidates])
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def search_policy(evaluate: Evaluate, labels: np.ndarray, multilabel: bool, pool: tuple[SubPolicy, ...],
                  default: Policy, seconds: float, pass_s: float, rng: np.random.Generator,
                  cfg: SearchCfg = SearchCfg(), deadline: Callable[[], bool] | None = None) -> SearchResult:
    """Random search over policies of `cfg.sub_policies` sub-policies drawn from `pool`.

    seconds: what the search may spend (the caller's share of the clock); pass_s: the measured cost of one
    held-out pass; deadline: asked before each candidate, True stops the search early.
    """
    started = time.monotonic()
    wanted = candidates_affordable(seconds, pass_s, cfg)

    def result(policy: Policy, applied: bool, baseline: Candidate | None, candidates: list[Candidate],
               agreement: float = float("nan")) -> SearchResult:
        return SearchResult(policy, applied, baseline, tuple(candidates), time.monotonic() - started, agreement,
                            wanted, cfg.min_candidates)

    if wanted < cfg.min_candidates:  # Pokemon on 2 cores: 4 candidates in 7.8 s that nothing could rank
        return result(default, False, None, [])
    half = split_halves(labels, rng)
    began = time.monotonic()
    baseline = score(evaluate, Policy(()), labels, multilabel, cfg.draws, half)
    candidate_s = time.monotonic() - began  # measured: the plan's pass_s may be off (CPU speed varies)
    candidates: list[Candidate] = []
    for _ in range(wanted):
        if deadline is not None and deadline():
            break
        if time.monotonic() - started + candidate_s > seconds:  # the next one would end past the share
            break
        began = time.monotonic()
        subs = tuple(pool[i] for i in rng.choice(len(pool), cfg.sub_policies, replace=True))
        candidates.append(score(evaluate, Policy(subs), labels, multilabel, cfg.draws, half))
        candidate_s = max(candidate_s, time.monotonic() - began)
    agreement = rank_agreement(candidates)
    if len(candidates) < cfg.min_candidates or not agreement >= cfg.min_agreement:
        return result(default, False, baseline, candidates, agreement)
    best = [candidates[i] for i in np.argsort([c.loss for c in candidates], kind="stable")[:cfg.keep]]
    subs: list[SubPolicy] = []
    for c in best:
        subs.extend(s for s in c.policy.subs if s not in subs)
    return result(Policy(tuple(subs)), True, baseline, candidates, agreement)
