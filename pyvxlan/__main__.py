"""``python -m pyvxlan``: the ``pyvxlan`` command."""

from __future__ import annotations

import sys

from pyvxlan.cli import main

if __name__ == "__main__":
    sys.exit(main())
