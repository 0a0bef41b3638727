"""Checkers of chapter 5 (mixup): the soft targets of a mixed batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asdlib.exercises import Mistake, expect_close, expect_shape, run_check

__all__ = ["check_soft_targets"]


def check_soft_targets(fn):
    """Check ``fn(y_a, y_b, lam, num_classes) -> [batch, classes]`` soft targets; print a verdict."""

    def check(fn):
        num_classes = 4
        # Rows 2 and 4 mix a clip with a clip of the same class
        y_a = torch.tensor([0, 1, 2, 3, 1])
        y_b = torch.tensor([1, 3, 2, 0, 1])
        for lam in (0.3, 0.8):
            got = fn(y_a.clone(), y_b.clone(), lam, num_classes)
            onehot_a = F.one_hot(y_a, num_classes).double()
            onehot_b = F.one_hot(y_b, num_classes).double()
            expected = lam * onehot_a + (1 - lam) * onehot_b
            expect_shape(got, expected.shape, "the soft targets")
            got = got.detach().double()
            same = y_a == y_b
            # The rows of two different classes first
            expect_close(got[~same], expected[~same], f"the soft target (lambda = {lam})", {
                "swapped": (((1 - lam) * onehot_a + lam * onehot_b)[~same],
                            "lambda weighs y_a and 1 - lambda weighs y_b; yours are swapped"),
                "hard a": (onehot_a[~same], "these are the one-hot labels of y_a alone; mix in y_b"),
                "hard b": (onehot_b[~same], "these are the one-hot labels of y_b alone; mix in y_a"),
            })
            if not torch.allclose(got[same], expected[same]):
                rows = ", ".join(f"{r:.2f}" for r in got[same].sum(dim=1).tolist())
                raise Mistake(
                    f"the rows where y_a == y_b should hold 1 at that class (lambda + "
                    f"(1 - lambda)); yours sum to {rows}: did you write the second weight "
                    "over the first (=) instead of adding it (+=)?"
                )
        return "lambda on y_a plus (1 - lambda) on y_b, rows summing to 1, also when y_a == y_b."

    return run_check("soft targets", check, fn)
