"""Zip the ``recsys`` package for ``spark-submit --py-files`` (how a cluster user ships it).

python -m recsys.package dist/recsys.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def build_zip(out: str | Path) -> Path:
    """Write a zip holding ``recsys/**/*.py``; returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    package = Path(__file__).resolve().parent
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*.py")):
            zf.write(path, path.relative_to(package.parent).as_posix())
    tmp.replace(out)
    return out


if __name__ == "__main__":
    print(build_zip(sys.argv[1] if len(sys.argv) > 1 else "dist/recsys.zip"))
