"""``python -m asdlib``: the command line of `asdlib.cli`."""

import sys

from asdlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
