"""``python -m transferlab.cli``: the command line."""
import sys

from transferlab.cli.main import main

sys.exit(main())
