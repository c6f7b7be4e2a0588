"""Anchors: the audit chain's head, recorded outside the panel database.

After a transaction that appended events commits, its appender adds one line to an
append-only file (MLOPS_AUDIT_ANCHOR_FILE, default `<data folder>/audit-anchors.jsonl`):
the id and hash of the last event it appended, signed with the audit key. `verify`
then knows events the database alone cannot vouch for: an anchored id missing from the
chain means events were deleted (truncation), a different hash at an anchored id means
the event was rewritten, even by someone holding the key but not this file.

Why a late or lost line never fails a sound chain: a line is written only after its
event committed, so every anchor names an event that exists, and lines are checked one
by one. When two processes append at once their lines may land out of order (#11 before
#10); nothing reads "the last line", the highest id is the head the chain must reach.
A process that dies between commit and anchor leaves its events unanchored: they are
verified by their hashes, and only their deletion could go unseen.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mlops_core.errors import ConfigError
from mlops_core.stores.audit_key import is_signed, sign


@dataclass(frozen=True)
class Anchor:
    id: int
    hash: str


@dataclass(frozen=True)
class Anchors:
    """The valid anchors of a file, by id; `problem` when a line is not the panel's."""

    entries: tuple[Anchor, ...] = ()
    problem: str | None = None


def _payload(anchor: Anchor) -> dict[str, Any]:
    # "kind" keeps an anchor's signature from ever passing for an event's, or the reverse.
    return {"kind": "audit-anchor", "id": anchor.id, "hash": anchor.hash}


def _ends_torn(file: BinaryIO) -> bool:
    """Whether the file ends inside a line: an appender died halfway through writing it."""
    size = file.seek(0, os.SEEK_END)
    if size == 0:
        return False
    file.seek(size - 1)
    return file.read(1) != b"\n"


def write_anchor(path: Path, key: bytes, anchor: Anchor) -> None:
    line = json.dumps({"id": anchor.id, "hash": anchor.hash, "mac": sign(key, _payload(anchor))})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as file:
        # One appender at a time, across processes sharing the folder: no interleaved lines.
        fcntl.flock(file, fcntl.LOCK_EX)
        prefix = b"\n" if _ends_torn(file) else b""
        file.write(prefix + line.encode("utf-8") + b"\n")
        file.flush()
        os.fsync(file.fileno())


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _anchor_of(entry: Any) -> tuple[Anchor, str] | None:
    if not isinstance(entry, dict):
        return None
    id_, hash_, mac = entry.get("id"), entry.get("hash"), entry.get("mac")
    if type(id_) is not int or not isinstance(hash_, str) or not isinstance(mac, str):
        return None
    return Anchor(id_, hash_), mac


def read_anchors(path: Path, key: bytes) -> Anchors:
    """Every anchor in the file, checked against the key; none when there is no file."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return Anchors()
    except OSError as exc:
        raise ConfigError(
            f"MLOPS_AUDIT_ANCHOR_FILE: cannot read the audit anchors in {path} ({exc.strerror})."
        ) from None
    found: list[Anchor] = []
    for number, line in enumerate(text.split("\n"), start=1):
        entry = _parse(line)
        if entry is None:
            # An empty or torn line (never valid JSON): a write that did not finish.
            continue
        parsed = _anchor_of(entry)
        if parsed is None or not is_signed(key, _payload(parsed[0]), parsed[1]):
            return Anchors(
                problem=f"line {number} of the anchor file {path} is not signed with the "
                "audit key (it was forged, or written with another key)."
            )
        found.append(parsed[0])
    return Anchors(tuple(sorted(found, key=lambda a: a.id)))
