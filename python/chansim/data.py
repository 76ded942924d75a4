"""Where the shared evaluation and training data live.

The project's data (Kodak, training photos, Philox known-answer vectors) is never
copied into the package. Tests, benchmarks and training find it through
:func:`shared_data_dir`, and skip with a clear reason when it is absent (a
user's machine usually has no ``shared/`` directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

ENV_VAR = "CHANSIM_SHARED_DATA"


def shared_data_dir() -> Optional[Path]:
    """The shared data directory, or None.

    Looks at ``$CHANSIM_SHARED_DATA``, then for ``shared/data`` beside the current
    directory or any of its parents (CI clones the repository next to ``shared/``),
    then beside the source tree this module lives in (a checkout or editable install
    run from elsewhere).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            cand = d / "shared" / "data"
            if cand.is_dir():
                return cand
    return None


def shared_path(*parts: str) -> Optional[Path]:
    """A path inside the shared data directory, or None if it does not exist."""
    root = shared_data_dir()
    if root is None:
        return None
    p = root.joinpath(*parts)
    return p if p.exists() else None
