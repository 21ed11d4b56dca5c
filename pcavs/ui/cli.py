"""``pcavs ui``: arguments and the command function (wired into ``pcavs.cli`` by the lead).

Serves the page on 127.0.0.1 by default; exit status 2 (with one ``error: ...`` line) for a weights
folder that cannot hold weights, a port that is taken, or a missing gradio.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

__all__ = ["add_arguments", "main", "run"]

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pcavs ui`` options to ``parser`` (cheap: gradio is not imported)."""
    parser.add_argument("--weights", metavar="DIR", default=None,
                        help="pcavs weights folder or official latest_net_*.pth folder "
                             "(default: the bundled pcavs/assets/weights/synthtalk-small)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes the page "
                             "to the network, without any login)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="default auto")
    parser.add_argument("--examples", metavar="DIR", default=None,
                        help="folder with identity.png, speech.wav and pose.mp4 for the one-click example "
                             "(default: the bundled pcavs/assets/demo)")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # gradio closes the server on it; atexit then removes the temporary outputs


def run(args: argparse.Namespace) -> int:
    """Start the server and block until Ctrl-C; returns the exit status."""
    try:
        import gradio  # noqa: F401  (checked first: a clear message beats an ImportError deep inside)
    except ImportError:
        print("error: the web UI needs gradio: pip install 'pcavs[ui]'", file=sys.stderr)
        return 2
    from pcavs.errors import UserError

    from .app import build_app, launch
    from .backend import DEFAULT_EXAMPLES_DIR

    if not 1 <= args.port <= 65535:
        print(f"error: --port must be between 1 and 65535, got {args.port}", file=sys.stderr)
        return 2
    examples = args.examples if args.examples is not None else DEFAULT_EXAMPLES_DIR
    try:
        demo = build_app(args.weights, examples, device=args.device)  # checks the device and weights folder
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.host not in _LOCAL_HOSTS:
        print(f"warning: serving on {args.host}: anyone who can reach this machine can use the page", file=sys.stderr)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None  # `kill` stops it like Ctrl-C
    try:
        launch(demo, host=args.host, port=args.port, examples_dir=examples)
    except OSError as exc:  # port taken, address not on this machine
        print(f"error: cannot serve on {args.host}:{args.port} ({exc}); try another --port", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pcavs.ui.cli``), the same as ``pcavs ui``."""
    parser = argparse.ArgumentParser(prog="pcavs ui", description="local web page to make talking-face videos")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
