"""Checkers of chapter 10 (ablations over seeds).

``check_seed_mean_std(fn)``: ``fn(values) -> (mean, std)`` over the seeds (axis 0) of a
``[seeds, columns]`` array, with the sample standard deviation (ddof = 1) that
``asdlib.metrics.seed_summary`` reports.

``check_main_effects(fn)``: ``fn(average) -> (loss_effect, feature_effect)`` from the average
AUC of the four variants of the 2 x 2 ablation: the effect of Noisy-ArcMix over ArcFace
averaged over the two networks, and the effect of TASTgram over STgram averaged over the two
losses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.exercises import Mistake, run_check

__all__ = ["ABLATION_ROWS", "check_main_effects", "check_seed_mean_std"]

#: The four variants of the 2 x 2 ablation, named as in the paper's table.
ABLATION_ROWS = ("STgram (ArcFace)", "TASTgram (ArcFace)", "STgram (NAMix)", "TASTgram (NAMix)")


def _array(got, what):
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mistake(f"{what} should be an array of numbers, got {type(got).__name__}") from None


def check_seed_mean_std(fn):
    """Check ``fn(values [seeds, columns]) -> (mean, std)``; print a verdict."""

    def check(fn):
        rng = np.random.default_rng(7)
        values = 80 + 5 * rng.standard_normal((3, 4))  # [seeds, columns]
        got = fn(values.copy())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mistake(f"return a pair (mean, std), got {type(got).__name__}")
        mean, std = _array(got[0], "the mean"), _array(got[1], "the std")
        n = values.shape[0]
        want_mean, want_std = values.mean(axis=0), values.std(axis=0, ddof=1)
        if mean.shape == (n,) or std.shape == (n,):
            raise Mistake(f"you averaged over the columns (one value per seed, shape ({n},)); "
                          f"average over the seeds, axis 0, to get one value per column")
        for name, part, want in (("mean", mean, want_mean), ("std", std, want_std)):
            if part.shape != want.shape:
                raise Mistake(f"the {name} should have shape {want.shape} (one value per column), "
                              f"got {part.shape}")
        if not np.allclose(mean, want_mean, rtol=1e-9, atol=1e-9):
            raise Mistake(f"the mean is off by {np.abs(mean - want_mean).max():.3g}: it is the "
                          "plain average of the seeds' values, column by column")
        if np.allclose(std, want_std, rtol=1e-9, atol=1e-9):
            return "mean and sample standard deviation (ddof = 1) over the seeds, per column."
        hints = [
            (values.std(axis=0, ddof=0), f"that is the population standard deviation (ddof = 0, "
             f"divide by n = {n}); with a few seeds the book uses the sample standard deviation, "
             f"divide by n - 1 = {n - 1} (np.std(..., ddof=1), as metrics.seed_summary)"),
            (values.var(axis=0, ddof=1), "that is the variance; take its square root"),
            (want_std / np.sqrt(n), "that is the standard error of the mean (std / sqrt(n)); the "
             "table reports the spread of single runs, the std itself"),
        ]
        for value, hint in hints:
            if np.allclose(std, value, rtol=1e-9, atol=1e-9):
                raise Mistake(f"the std is off by {np.abs(std - want_std).max():.3g}: {hint}")
        raise Mistake(f"the std is off by {np.abs(std - want_std).max():.3g} (expected "
                      f"np.std(values, axis=0, ddof=1))")

    return run_check("mean and std over seeds", check, fn)


def check_main_effects(fn):
    """Check ``fn(average: pd.Series) -> (loss_effect, feature_effect)``; print a verdict."""

    def check(fn):
        average = pd.Series([91.0, 93.7, 94.1, 95.2], index=list(ABLATION_ROWS), name="AUC")
        got = fn(average.copy())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mistake(f"return a pair (loss_effect, feature_effect), got {type(got).__name__}")
        try:
            loss_effect, feature_effect = float(got[0]), float(got[1])
        except (TypeError, ValueError):
            raise Mistake(f"return two numbers, got {got!r}") from None
        st_af, tast_af, st_na, tast_na = (average[name] for name in ABLATION_ROWS)
        want_loss = ((st_na - st_af) + (tast_na - tast_af)) / 2
        want_feature = ((tast_af - st_af) + (tast_na - st_na)) / 2
        close = lambda a, b: abs(a - b) < 1e-9  # noqa: E731
        if close(loss_effect, want_loss) and close(feature_effect, want_feature):
            return (f"Noisy-ArcMix over ArcFace {want_loss:+.2f}, TASTgram over STgram "
                    f"{want_feature:+.2f} points, each averaged over the other factor.")
        if close(loss_effect, want_feature) and close(feature_effect, want_loss):
            raise Mistake("the two effects are swapped: return (loss effect, feature effect)")
        if close(loss_effect, -want_loss) or close(feature_effect, -want_feature):
            raise Mistake("an effect has the wrong sign: it is new minus old (NAMix - ArcFace, "
                          "TASTgram - STgram), so a positive effect is an improvement")
        for name, got_value, want, single in (
                ("loss", loss_effect, want_loss, {st_na - st_af: "STgram", tast_na - tast_af: "TASTgram"}),
                ("feature", feature_effect, want_feature,
                 {tast_af - st_af: "ArcFace", tast_na - st_na: "NAMix"})):
            if close(got_value, want):
                continue
            for value, where in single.items():
                if close(got_value, value):
                    raise Mistake(f"the {name} effect {got_value:+.2f} is the difference within "
                                  f"the {where} row(s) only; the main effect averages the "
                                  f"difference over both levels of the other factor "
                                  f"(expected {want:+.2f})")
            if close(got_value, tast_na - st_af):
                raise Mistake(f"the {name} effect {got_value:+.2f} compares TASTgram (NAMix) with "
                              f"STgram (ArcFace): both factors change at once. Change one factor "
                              f"and average over the other (expected {want:+.2f})")
            raise Mistake(f"the {name} effect is {got_value:+.2f}, expected {want:+.2f}")
        raise Mistake("unexpected answer")  # pragma: no cover

    return run_check("main effects", check, fn)
