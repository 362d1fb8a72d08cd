"""Making text fit a terminal: its width (wrapping, tables with shortened cells) and its encoding.

- `fit_lines(lines, width)`: every line no wider than `width` columns. A longer line is wrapped at
  spaces with a hanging indent; a word longer than the room left (a URL, a path) is broken after a
  `/`, `,`, `&`, `?` or `=` where it can be, hard otherwise. ANSI colour codes take no column; East Asian
  wide characters take two.
- `table(headers, rows, width)`: columns as wide as their content when the width allows, otherwise the
  flexible columns shortened with an ellipsis (never wrapped mid-word); a column that would get too
  narrow is left out.
- `fit_encoding(text, encoding)`: what the output's encoding cannot show becomes ASCII (a table for the
  report's own marks, accents stripped, `?` for the rest) instead of failing with UnicodeEncodeError.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from feedback_check.findings import Severity, Verdict

_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
#: A space no line is broken at; shown as a plain space. Put into text by reporters that want two words
#: to stay on one line ("4 shops").
KEEP_TOGETHER = "\u00a0"
_QUOTED = re.compile(r"`[^`\n]{1,50}`")
_KEEP_SPACE = "\x00"        # control characters never reach here: clean() escapes them
_LEADING = re.compile(r"((?:\x1b\[[0-9;]*m)*)( *)(.*)", re.DOTALL)
#: Where a long word may be broken, the break going after the character: best after these ...
_BREAK_AFTER = re.compile(r"[/,&?=;|]")
#: ... else after these.
_BREAK_AFTER_TOO = re.compile(r"[\-_.:]")
#: The least room a wrapped line keeps for its text, however deep its indent.
MIN_TEXT_COLUMNS = 20

#: The report's own non-ASCII marks and their ASCII stand-ins (one column each, so wrapped text stays
#: inside its width after the replacement).
ASCII_MARKS = {
    "━": "=", "─": "-", "│": "|", "✗": "x", "✓": "+", "✔": "+", "·": "-", "…": "~", "→": ">", "←": "<",
    "–": "-", "—": "-", "⏎": "|", "•": "*", "‘": "'", "’": "'", "“": '"', "”": '"', "≥": ">", "≤": "<",
    "×": "x", "°": "o", "\u00a0": " ",
}


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal (ANSI codes none, wide characters two, combining marks none)."""
    plain = _ANSI_CODE.sub("", text)
    if plain.isascii():
        return len(plain)
    width = 0
    for char in plain:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in … when cut. Plain text (no ANSI codes)."""
    if display_width(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    out = []
    used = 0
    for char in text:
        w = display_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def fit_lines(lines: Iterable[str], width: int, *, hang: int = 4) -> list[str]:
    """Every line wrapped to `width` columns; continuation lines indented `hang` columns deeper."""
    out: list[str] = []
    for line in lines:
        for part in line.split("\n"):
            if display_width(part) <= width:
                out.append(part.rstrip().replace(KEEP_TOGETHER, " "))
                continue
            # Colour codes before the indent (a whole coloured line) go after it: the indent is spaces.
            codes, spaces, rest = _LEADING.match(part).groups()  # type: ignore[union-attr]
            indent = len(spaces)
            out += wrap(codes + rest, width, indent=indent, hang=indent + hang)
    return out


def wrap(text: str, width: int, *, indent: int = 0, hang: int = 4) -> list[str]:
    """`text` as lines of at most `width` columns: the first indented `indent`, the others `hang`.

    Runs of spaces inside a line are kept (they align columns); at a line break they are dropped.
    """
    indent = min(indent, max(width - MIN_TEXT_COLUMNS, 0))
    hang = min(hang, max(width - MIN_TEXT_COLUMNS, 0))
    lines: list[str] = []
    current = " " * indent
    current_width = indent
    fresh = True          # nothing but indentation on the current line yet
    for gap, word in _words(text):
        word_width = display_width(word)
        needed = word_width + (0 if fresh else len(gap))
        if current_width + needed <= width:
            current += word if fresh else gap + word
            current_width += needed
            fresh = False
            continue
        if not fresh:
            lines.append(current)
            current, current_width, fresh = " " * hang, hang, True
        # The word alone on a fresh line: break it when it is still too long.
        for piece in _break_word(word, width - current_width, width - hang):
            if not fresh:
                lines.append(current)
                current, current_width = " " * hang, hang
            current += piece
            current_width += display_width(piece)
            fresh = False
    if not fresh or not lines:
        lines.append(current)
    return [line.rstrip() for line in lines]


def _words(text: str) -> list[tuple[str, str]]:
    """(the spaces before it, word) for each word of `text`. A colour code standing alone (the reset
    after a padded cell) is glued to the word before it, so it never carries a space to a line's end."""
    words: list[tuple[str, str]] = []
    gap = ""
    # A short `quoted rule` stays on one line: its spaces are not places to break.
    text = _QUOTED.sub(lambda m: m.group().replace(" ", _KEEP_SPACE), text)
    for part in re.split(r"( +)", text.strip(" ")):
        if not part:
            continue
        if part.startswith(" "):
            gap += part
        elif words and not _ANSI_CODE.sub("", part):
            words[-1] = (words[-1][0], words[-1][1] + part)
        else:
            words.append((gap, part))
            gap = ""
    return [(g, w.replace(_KEEP_SPACE, " ").replace(KEEP_TOGETHER, " ")) for g, w in words]


def _break_word(word: str, first_room: int, room: int) -> list[str]:
    """A word cut into pieces: the first at most `first_room` columns, the others `room`."""
    if display_width(word) <= first_room:
        return [word]
    plain = _ANSI_CODE.sub("", word)        # a word this long loses its colour rather than its last column
    pieces = []
    limit = max(first_room, 1)
    while display_width(plain) > limit:
        cut = _cut_at(plain, limit)
        pieces.append(plain[:cut])
        plain = plain[cut:]
        limit = max(room, 1)
    if plain:
        pieces.append(plain)
    return pieces


def _cut_at(text: str, columns: int) -> int:
    """Index to cut `text` at: the last break character within `columns`, else exactly `columns`."""
    end = 0
    used = 0
    for index, char in enumerate(text):
        used += display_width(char)
        if used > columns:
            break
        end = index + 1
    end = max(end, 1)
    for pattern in (_BREAK_AFTER, _BREAK_AFTER_TOO):
        best = max((m.end() for m in pattern.finditer(text, 0, end)), default=0)
        if best >= end // 2:
            return best
    return end


# --- tables ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    header: str
    minimum: int = 6           # the column is never shortened below this
    optional: bool = False     # left out when the others would otherwise be shortened too much
    shrink: int = 1            # order of shortening: 0 first, 1 next; 2 (names) only when nothing else helps


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *, indent: int = 2,
          gap: int = 2, styles: Sequence[Sequence[str | None]] | None = None) -> list[str]:
    """Rows of plain cells laid out under `columns` within `width` columns (see the module docstring).

    `styles[r][c]`, when given, replaces cell c of row r when it is shown in full (for colour): it must
    show the same text as the cell.
    """
    natural = [max([display_width(c.header)] + [display_width(r[i]) for r in rows]) for i, c in enumerate(columns)]
    every = list(range(len(columns)))
    required = [i for i in every if not columns[i].optional]
    attempts = [(every, 1), (required, 1), (required, 2)]
    widths: dict[int, int] | None = None
    shown = required
    for shown, up_to in attempts:
        widths = _fitted(columns, natural, shown, width - indent - gap * (len(shown) - 1), up_to)
        if widths is not None:
            break
    if widths is None:
        widths = {i: min(natural[i], columns[i].minimum) for i in shown}
    lines = []
    header_cells = [shorten(columns[i].header, widths[i]).ljust(widths[i]) for i in shown]
    lines.append((" " * indent + (" " * gap).join(header_cells)).rstrip())
    for r, row in enumerate(rows):
        cells = []
        for i in shown:
            text = shorten(row[i], widths[i])
            padded = text + " " * (widths[i] - display_width(text))
            style = styles[r][i] if styles is not None else None
            cells.append(padded.replace(text, style, 1) if style and text == row[i] else padded)
        lines.append((" " * indent + (" " * gap).join(cells)).rstrip())
    return lines


def _fitted(columns: Sequence[Column], natural: Sequence[int], shown: Sequence[int], room: int,
            up_to: int) -> dict[int, int] | None:
    """Widths of the `shown` columns within `room`, shortening columns in their `shrink` order (at most
    `up_to`) down to their minimum; None when that is not enough."""
    widths = {i: natural[i] for i in shown}
    excess = sum(widths.values()) - room
    for order in range(up_to + 1):
        same = [i for i in shown if columns[i].shrink == order]
        while excess > 0:
            # One column at a time from the one with the most room above its minimum: columns of the
            # same order end up shortened alike.
            slack = {i: widths[i] - columns[i].minimum for i in same if widths[i] > columns[i].minimum}
            if not slack:
                break
            widest = max(slack, key=lambda i: slack[i])
            widths[widest] -= 1
            excess -= 1
    return widths if excess <= 0 else None


# --- encodings ----------------------------------------------------------------------------------------

def can_encode(text: str, encoding: str | None) -> bool:
    try:
        text.encode(encoding or "utf-8")
    except UnicodeEncodeError:
        return False
    except LookupError:
        return True
    return True


def fit_encoding(text: str, encoding: str | None, *, markup: bool = False) -> str:
    """`text` with every character `encoding` cannot show replaced (see the module docstring).

    `markup`: the text is HTML/XML, where a character reference (`&#8594;`) keeps the character exactly.
    """
    if not encoding or can_encode(text, encoding):
        return text
    try:
        codecs.lookup(encoding)
    except LookupError:
        return text
    if markup:
        return text.encode(encoding, errors="xmlcharrefreplace").decode(encoding)
    out = []
    for char in text:
        if can_encode(char, encoding):
            out.append(char)
            continue
        out.append(_ascii_for(char))
    return "".join(out)


def _ascii_for(char: str) -> str:
    if char in ASCII_MARKS:
        return ASCII_MARKS[char]
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and base.isascii() and base.isprintable():
        return base
    return "?"


# --- colour ------------------------------------------------------------------------------------------

_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35", "cyan": "36"}
class Painter:
    """ANSI styles for a text report, or none (`color=False`)."""


    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_ANSI[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def verdict(self, verdict: Verdict, text: str | None = None) -> str:
        return self(text or verdict.name, "bold", _VERDICT_STYLE[verdict])

    def severity(self, severity: Severity, text: str) -> str:
        return self(text, _SEVERITY_STYLE[severity])



_VERDICT_STYLE = {Verdict.OK: "green", Verdict.WARNING: "yellow", Verdict.CRITICAL: "red",
                  Verdict.UNKNOWN: "magenta"}
_SEVERITY_STYLE = {Severity.CRITICAL: "red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
