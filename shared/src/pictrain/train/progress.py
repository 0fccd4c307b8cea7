"""ultralytics' progress bars outside a terminal."""

from __future__ import annotations

import sys


def one_line_per_bar_unless_terminal() -> None:
    """ultralytics redraws its bars ten times a second with `\\r`, into a pipe or a file too
    (`docker logs`, CI logs): megabytes of redraws. Outside a terminal, make it print each bar
    once, finished, as it does on GitHub Actions. Platform runs leave bars as they are: their
    supervisor collapses them and still shows progress within a long epoch."""
    if sys.stdout.isatty():
        return
    from ultralytics.utils import tqdm

    tqdm.is_noninteractive_console = lambda: True
