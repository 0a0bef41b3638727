"""Auto-checked exercises of the book: one module per chapter, one shared verdict helper.

Every chapter's checkers live in their own module (``asdlib.exercises.arcface`` for chapter 4,
...). Each checker takes the reader's function, runs it on a few small inputs, compares the
result with the library's answer and prints one verdict that says *what* is wrong, for
example::

    NOT YET (arcface_logits): the logit of the target class is off by 0.31; did you add the
    margin to the angle (cos(theta + m)) or to the cosine (cos(theta) - m)?

A stub that still raises ``NotImplementedError`` gets a friendly "not implemented yet"
message instead of an error, so that a notebook with unsolved exercises runs top to bottom.

Any ``check_<thing>`` of any chapter module is reachable from the package itself, e.g.
``asdlib.exercises.check_arcface_logits``: the module is imported on first use, so a broken
or missing chapter module never breaks the others.

Writing a checker (for the book's authors)::

    from asdlib.exercises import Mistake, expect_close, run_check

    def check_double(fn):
        def check(fn):
            x = torch.arange(3.0)
            got = fn(x)
            expect_close(got, 2 * x, "the result", mistakes={"x + 2": (x + 2, "add or multiply?")})
            return "double(x) equals 2 x on every entry."
        return run_check("double", check, fn)
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import torch

__all__ = ["Mistake", "Verdict", "expect_close", "expect_shape", "max_abs_diff", "run_check"]

#: Verdict statuses, by name.
PASSED, WRONG, NOT_IMPLEMENTED, ERROR = "passed", "wrong", "not_implemented", "error"

_HEADINGS = {
    PASSED: "PASSED",
    WRONG: "NOT YET",
    NOT_IMPLEMENTED: "TO DO",
    ERROR: "YOUR FUNCTION RAISED AN ERROR",
}


class Mistake(Exception):
    """Raised inside a check to say, in words, what is wrong with the reader's answer."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check.

    Attributes:
        name: what was checked (usually the reader's function name).
        status: one of "passed", "wrong", "not_implemented", "error".
        message: the full sentence printed for the reader.
    """

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message


def _name_of(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def run_check(name: str, check, fn, quiet: bool = False) -> Verdict:
    """Run ``check(fn)``, print one verdict and return it; never raises.

    ``check`` returns a short note on success (or None) and raises `Mistake` with the
    explanation when the answer is wrong. A ``NotImplementedError`` raised anywhere in the
    reader's function becomes the friendly "not implemented yet" verdict; any other exception
    is reported with its type and message.

    Args:
        name: what is being checked, shown in the verdict.
        check: the checking function, called as ``check(fn)``.
        fn: the reader's function.
        quiet: do not print (the tests use this).

    Returns:
        The `Verdict`.
    """
    heading = f"({name})"
    try:
        note = check(fn)
    except NotImplementedError:
        status = NOT_IMPLEMENTED
        text = (
            f"not implemented yet: replace `raise NotImplementedError` in `{_name_of(fn)}` "
            "with your code, run that cell, then run this one again."
        )
    except Mistake as err:
        status, text = WRONG, str(err)
    except Exception as err:  # noqa: BLE001 - the reader's code may raise anything
        status = ERROR
        text = f"{type(err).__name__}: {err}"
    else:
        status = PASSED
        text = note or "your function gives the expected answer on every test input."
    verdict = Verdict(name, status, f"{_HEADINGS[status]} {heading}: {text}")
    if not quiet:
        print(verdict.message)
    return verdict


def max_abs_diff(got, expected) -> float:
    """Largest absolute difference between two tensors of the same shape, as a float."""
    got = torch.as_tensor(got, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    if got.numel() == 0:
        return 0.0
    return float((got - expected).abs().max())


def expect_shape(got, shape, what: str) -> None:
    """Raise `Mistake` unless ``got`` is a tensor of ``shape``."""
    if not torch.is_tensor(got):
        raise Mistake(f"{what} should be a torch.Tensor of shape {tuple(shape)}, got {type(got).__name__}.")
    if tuple(got.shape) != tuple(shape):
        raise Mistake(f"{what} should have shape {tuple(shape)}, got {tuple(got.shape)}.")


def expect_close(got, expected, what: str, mistakes=None, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Raise `Mistake` unless ``got`` is close to ``expected``; name a typical mistake if it fits.

    Args:
        got: the reader's tensor.
        expected: the right answer.
        what: what the tensor is, in words ("the logit of the target class").
        mistakes: optional ``{name: (wrong_answer, hint)}``: when ``got`` is close to a
            wrong answer, the hint is part of the message.
        rtol, atol: tolerances of the comparison.
    """
    expect_shape(got, expected.shape, what)
    got64 = got.detach().to(torch.float64)
    expected64 = expected.detach().to(torch.float64)
    if torch.allclose(got64, expected64, rtol=rtol, atol=atol):
        return
    off = max_abs_diff(got64, expected64)
    for wrong, hint in (mistakes or {}).values():
        if torch.allclose(got64, wrong.detach().to(torch.float64), rtol=rtol, atol=atol):
            raise Mistake(f"{what} is off by {off:.3g}; {hint}")
    raise Mistake(f"{what} is off by {off:.3g} (largest absolute difference).")


def _chapter_modules():
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def __getattr__(name: str):
    """Find ``check_*`` (and other public names) in the chapter modules on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    broken = []
    for module_name in _chapter_modules():
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except Exception as err:  # noqa: BLE001 - one broken chapter must not hide the others
            broken.append(f"{module_name} ({type(err).__name__}: {err})")
            continue
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    note = f"; these modules failed to import: {', '.join(broken)}" if broken else ""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{note}")


def __dir__():
    names = set(globals())
    for module_name in _chapter_modules():
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except Exception:  # noqa: BLE001
            continue
        names.update(getattr(module, "__all__", ()))
    return sorted(names)
