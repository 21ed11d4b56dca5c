"""``python -m pcavs.synth OUT_DIR --identities N ...``; ``main`` is importable (``pcavs synth``)."""

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
