"""The run's log: headline lines on the terminal, detail lines with ``-v``, every line kept for ``log.txt``.

The stages and the training loop speak through one ``say(line)`` callable. A
:class:`Log` is such a callable (a headline line) that also offers
``detail(line)`` (per epoch, per fold set, per classifier: shown with
``-v``) and ``bar(total, desc)`` (a progress bar with its ETA, on a
terminal). Code that receives a plain callable uses :func:`detail_of` and
:func:`bar_of`, which fall back to the callable itself (and no bar), so a test
that collects lines still sees them all. Every line, shown or not, is kept in
order for :meth:`Log.write`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, TextIO

Say = Callable[[str], None]

# The terminal's width: longer lines are wrapped, unless they hold a path.
WIDTH = 100


class Log:
    """A ``say`` callable with levels.

    Args:
      verbose: show the detail lines too.
      stream: where shown lines go (stderr).
      bars: draw progress bars (default: when ``stream`` is a terminal).
      shown: False keeps every line for the file and shows none (``--quiet``).
    """

    def __init__(self, verbose: bool = False, stream: TextIO | None = None, bars: bool | None = None,
                 shown: bool = True):
        self.verbose, self.shown = verbose, shown
        self.stream = stream if stream is not None else sys.stderr
        self.bars = shown and (self.stream.isatty() if bars is None else bars)
        self.lines: list[str] = []
        self._bar: Any = None

    def __call__(self, line: str) -> None:
        self._emit(line, shown=True)

    def detail(self, line: str) -> None:
        self._emit(line, shown=self.verbose)

    def bar(self, total: int, desc: str):
        """A tqdm bar of ``total`` steps (None when bars are off or with ``-v``, whose lines say as much)."""
        if not self.bars or self.verbose:
            return None
        from tqdm import tqdm  # a dependency, loaded only when a bar is drawn

        self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=False, ncols=90,
                         bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        return self._bar

    def _emit(self, line: str, *, shown: bool) -> None:
        self.lines.append(line)
        if not (shown and self.shown):
            return
        if self._bar is not None and not self._bar.disable:
            self._bar.clear()
        for piece in fit_width(line):
            print(piece, file=self.stream, flush=True)
        if self._bar is not None and not self._bar.disable:
            self._bar.refresh()

    def write(self, path: Path) -> None:
        """Every line so far, shown or not, into ``path`` (the run folder's ``log.txt``)."""
        Path(path).write_text("\n".join(self.lines) + "\n")


def fit_width(line: str, width: int = WIDTH) -> list[str]:
    """``line`` as terminal lines of at most ``width`` characters, continuations indented; a
    line that holds a path stays whole (a path cut in two cannot be copied).

    Example:
      >>> [len(piece) <= 20 for piece in fit_width("a b c d e f g h i j k l m n o", 20)]
      [True, True]
      >>> fit_width("one\ntwo", 20)
      ['one', 'two']
    """
    if "\n" in line:  # each of its lines fitted on its own, not run together
        return [piece for part in line.split("\n") for piece in fit_width(part, width)]
    if len(line) <= width or any(_is_path(token) for token in line.split()):
        return [line]
    return textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False)


def _is_path(token: str) -> bool:
    return "/" in token and (token.lstrip("'\"(").startswith(("/", "~", "./", "../")) or "." in token.split("/")[-1])


def detail_of(say: Say | None) -> Say:
    """``say``'s detail level, or ``say`` itself for a plain callable."""
    if say is None:
        return lambda line: None
    return getattr(say, "detail", say)


def bar_of(say: Say | None, total: int, desc: str):
    """A progress bar from ``say`` if it draws bars, else None."""
    make = getattr(say, "bar", None)
    return make(total, desc) if make is not None else None
