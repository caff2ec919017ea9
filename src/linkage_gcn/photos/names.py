"""The names file: person or face ids -> names, read on every run.

A text file, one name per line, tab-separated: an id, then the name. The id
is a person id as the gallery shows it (``12`` or ``person:12``) or a face
id (``face:40``); a face line overrides the person line of that face's
person. Blank lines and lines starting with ``#`` are skipped. Two lines
giving one name to two persons join them (must-link); two names never share
a person (cannot-link).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NAMES_TEMPLATE", "NameEntry", "read_names"]

#: What a new names file holds.
NAMES_TEMPLATE = """\
# Names for linkage-gcn photos: one line per person or face, the id, a TAB, the name.
# The id is a person id as the gallery shows it (12, or person:12) or a face id (face:40).
# Run the command again after editing: named faces stay with their name; two names never
# share a person; giving one name to two persons makes them one.
"""

_ID = re.compile(r"^(?:(person|face):)?(\d+)$")


@dataclass(frozen=True)
class NameEntry:
    """One line of a names file.

    Attributes
    ----------
    kind : {"person", "face"}
    id : int
    name : str
    line : int
        Its line number (from 1), for messages.
    """

    kind: str
    id: int
    name: str
    line: int


def read_names(path: os.PathLike | str) -> list[NameEntry]:
    r"""Read a names file (see the module documentation).

    Raises
    ------
    ValueError
        Naming the file and the line: a line without a TAB, an id that is
        neither ``N``, ``person:N`` nor ``face:N``, an empty name, or one id
        given two different names.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp, "names.tsv")
    ...     _ = p.write_text("# comment\n12\tAnn\nface:40\tBob\n")
    ...     [(e.kind, e.id, e.name) for e in read_names(p)]
    [('person', 12, 'Ann'), ('face', 40, 'Bob')]
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a UTF-8 text file.") from None
    entries: list[NameEntry] = []
    seen: dict[tuple[str, int], NameEntry] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip(" \r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise ValueError(f"{p} line {number}: expected an id, a TAB and a name, got {raw!r}.")
        key, name = (part.strip() for part in line.split("\t", 1))
        m = _ID.match(key)
        if m is None:
            raise ValueError(f"{p} line {number}: {key!r} is not a person id (12 or person:12) "
                             "or a face id (face:40).")  # fmt: skip
        if not name:
            raise ValueError(f"{p} line {number}: the name is empty.")
        entry = NameEntry(m.group(1) or "person", int(m.group(2)), name, number)
        prev = seen.get((entry.kind, entry.id))
        if prev is not None and prev.name != name:
            raise ValueError(f"{p} lines {prev.line} and {number} give {entry.kind} {entry.id} "
                             f"two names ({prev.name!r}, {name!r}).")  # fmt: skip
        seen[(entry.kind, entry.id)] = entry
        entries.append(entry)
    return entries
