"""What the tests of the book and of the rendered site share."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list:
    """The pages of `_toc.yml` in order, as paths relative to the repository without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = toc.get("parts", [{"chapters": toc.get("chapters", [])}])
    return [toc["root"]] + [entry["file"] for part in parts for entry in part["chapters"]]
