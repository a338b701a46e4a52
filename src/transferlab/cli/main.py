"""The ``transferlab`` command line: the parser from ``cli.parsers`` (light: ``--help`` answers at once), then the
chosen command's module ``cli.<command>``, imported only to run it."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

import transferlab
from transferlab.cli.parsers import DESCRIPTIONS, PARSERS
from transferlab.extras import missing_line


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default to its help, unless there is none to show (unset, a flag) or it says so."""

    def _get_help_string(self, action):
        help, default = action.help or "", action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS or "default" in help:
            return help
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{help} (default: {shown.replace('%', '%%')})"


class VersionAction(argparse.Action):
    """``--version``: prints ``transferlab X.Y.Z`` and exits."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {transferlab.__version__}")
        parser.exit()


def describe(doc: str) -> str:
    """A command's one-line description: its module docstring's first paragraph, without the ``transferlab X``: lead."""
    first = re.sub(r"^``[^`]*``:\s*", "", " ".join(doc.strip().split("\n\n")[0].split()))
    return first[:1].upper() + first[1:]


def build_parser() -> argparse.ArgumentParser:
    """The whole parser (nothing heavy is imported)."""
    parser = argparse.ArgumentParser(prog="transferlab", description=describe(transferlab.__doc__),
                                     epilog="`transferlab COMMAND --help` gives the options of a command.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add in PARSERS.items():
        add(sub)
        sub.choices[name].formatter_class = HelpFormatter
        sub.choices[name].description = describe(DESCRIPTIONS[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse leaves image paths given after options unparsed (`predict M --top 3 a.jpg`): they are images too
    if extra and isinstance(getattr(args, "images", None), list) and not any(e.startswith("-") for e in extra):
        args.images += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        # the command's module, with its heavy imports (torch, scikit-learn, …), only now
        return importlib.import_module(f"transferlab.cli.{args.command}").run(args) or 0
    except KeyboardInterrupt:
        print("transferlab: interrupted (what was computed and cached is kept)", file=sys.stderr)
        return 130
    # bad input: one line, exit status 2 (TRANSFERLAB_DEBUG=1: the traceback)
    except (KeyError, ValueError, OSError, RuntimeError, ImportError) as e:
        if os.environ.get("TRANSFERLAB_DEBUG") or (isinstance(e, ImportError) and
                                                   (e.name or "transferlab").startswith("transferlab")):
            raise  # asked for, or an import of our own that fails: a bug, with its traceback
        if isinstance(e, ImportError):  # an optional package imported without require(): still one line
            msg = missing_line(e.name or "a package", f"transferlab {args.command}")
        else:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"transferlab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
