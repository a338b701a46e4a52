"""The ``transferlab`` command line: one sub-command per module, each registering its own arguments."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command name -> module under transferlab.commands exposing add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "models": "models",
    "inspect": "inspect",
    "predict": "predict",
    "activations": "activations",
    "run": "run",
    "cache": "cache",
    "report": "report",
    "finetune": "finetune",
    "bench": "bench",
    "extract": "extract",
    "study": "study",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="transferlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, module in COMMANDS.items():
        modules[name] = importlib.import_module(f"transferlab.commands.{module}")
        modules[name].add_parser(sub)
    args, extra = parser.parse_known_args(argv)
    # argparse leaves image paths given after options unparsed (`predict M --top 3 a.jpg`): they are images too
    if extra and isinstance(getattr(args, "images", None), list) and not any(e.startswith("-") for e in extra):
        args.images += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return modules[args.command].run(args) or 0
    except KeyboardInterrupt:
        print("transferlab: interrupted (what was computed and cached is kept)", file=sys.stderr)
        return 130
    except (KeyError, ValueError, OSError, RuntimeError) as e:  # bad input: one line, exit status 2 (TRANSFERLAB_DEBUG=1: traceback)
        if os.environ.get("TRANSFERLAB_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"transferlab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
