"""What the tests of the exercise checkers share."""


def stub(*args):
    raise NotImplementedError


def verdict_of(checker, fn, capsys):
    """Run a checker, return (its verdict, what it printed)."""
    verdict = checker(fn)
    printed = capsys.readouterr().out
    assert printed.strip() == verdict.message
    return verdict, printed
