"""Checkers of chapter 10 (ablations over seeds).

``check_main_effects(fn)``: ``fn(average) -> (loss_effect, feature_effect)`` from the average
AUC of the four variants of the 2 x 2 ablation: the effect of Noisy-ArcMix over ArcFace
averaged over the two networks, and the effect of TASTgram over STgram averaged over the two
losses.
"""

from __future__ import annotations

import pandas as pd

from asdlib.exercises import Mistake, run_check

__all__ = ["ABLATION_ROWS", "check_main_effects"]

#: The four variants of the 2 x 2 ablation, named as in the paper's table.
ABLATION_ROWS = ("STgram (ArcFace)", "TASTgram (ArcFace)", "STgram (NAMix)", "TASTgram (NAMix)")


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
