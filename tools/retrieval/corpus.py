"""Corpus documents: read a folder of front-matter Markdown/text files, check them, and cut them into chunks.

A corpus document is a ``.md`` or ``.txt`` file that starts with YAML front matter between two ``---`` lines::

    ---
    title: Terse follow-up note
    domain: asia            # the metadata filter a run retrieves with
    kind: note              # note | style | terminology
    register: terse         # optional: terse | narrative | bulleted
    synthetic: true         # required: false marks real records (the leakage check then matters)
    ---

    Seen in the chest clinic. ...

Files named ``README*`` are documentation of the folder and are skipped. Every other file must be a valid document;
a folder with one bad document is refused whole, naming each problem with file:line, before anything is stored.

Chunks are consecutive pieces of a document's body of at most ``max_chars`` characters, cut at headings, blank
lines, then sentence ends, then spaces: joined back in order they give the body's text again (whitespace aside).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from causalsynth.tools.errors import CausalSynthError, Problem

KINDS = ("note", "style", "terminology")
REGISTERS = ("terse", "narrative", "bulleted")
SUFFIXES = (".md", ".txt")
MAX_DOCUMENT_BYTES = 1_000_000
MAX_DOCUMENTS = 100_000
DEFAULT_CHUNK_CHARS = 800
CHUNKER_VERSION = 1  # part of each document's hash: a change of the chunker re-chunks every document

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_FIELDS = {"title", "domain", "kind", "register", "synthetic"}


class CorpusError(CausalSynthError):
    """A corpus folder or document is invalid; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"invalid corpus {source}: {self.problems[0]}"
        else:
            message = "\n".join(
                [f"invalid corpus {source}: {len(self.problems)} problems"] + [f"  - {p}" for p in self.problems]
            )
        super().__init__(message)


@dataclass(frozen=True)
class Document:
    """One corpus document: where it is (relative to the corpus folder), its front matter and body."""

    source: str  # POSIX path relative to the corpus folder
    title: str
    domain: str
    kind: str
    register: str  # "" when not given
    synthetic: bool
    body: str
    digest: str  # content hash (front matter, body, chunker version)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as stored in the vector store."""

    id: str  # "<source>#<index>"
    text: str
    metadata: dict[str, str | int | bool]


# -- reading -------------------------------------------------------------------------------------------------------
def load_corpus(folder: str | Path) -> list[Document]:
    """Read and check every document under ``folder`` (recursively), sorted by path.

    Raises:
        CorpusError: the folder is missing or empty, or any document is malformed (all problems at once).
    """
    root = Path(folder)
    if not root.is_dir():
        raise CorpusError(str(root), [Problem(str(root), "not a folder")])
    paths = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.upper().startswith("README")
    )  # fmt: skip
    if not paths:
        raise CorpusError(str(root), [Problem(str(root), f"no documents ({', '.join(SUFFIXES)} files) in it")])
    if len(paths) > MAX_DOCUMENTS:
        raise CorpusError(str(root), [Problem(str(root), f"{len(paths)} documents; at most {MAX_DOCUMENTS:,}")])
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        doc = read_document(path, path.relative_to(root).as_posix(), problems)
        if doc is not None:
            docs.append(doc)
    if problems:
        raise CorpusError(str(root), problems)
    return docs


def read_document(path: Path, source: str, problems: list[Problem]) -> Document | None:
    """Parse one document; append its problems (with file:line) and return None if it has any."""
    where = str(path)
    before = len(problems)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(where, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(raw) > MAX_DOCUMENT_BYTES:
        problems.append(Problem(where, f"{len(raw):,} bytes; a document must be under {MAX_DOCUMENT_BYTES:,}"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(f"{where}:{line}", f"not UTF-8 text (byte {exc.start})"))
        return None
    if "\x00" in text:
        problems.append(Problem(f"{where}:{text[: text.index(chr(0))].count(chr(10)) + 1}", "contains a NUL byte"))
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        problems.append(Problem(f"{where}:1", "must start with front matter: a '---' line, YAML fields, '---'"))
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        problems.append(Problem(f"{where}:1", "front matter is not closed by a '---' line"))
        return None
    try:
        meta: Any = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(exc, "problem", None) or "malformed YAML"
        problems.append(Problem(f"{where}:{line}", f"front matter is not valid YAML: {problem}"))
        return None
    if not isinstance(meta, dict):
        problems.append(Problem(f"{where}:2", "front matter must be YAML fields (key: value)"))
        return None
    body = "\n".join(lines[end + 1 :]).strip()

    def field_line(key: str) -> int:
        return next((i + 1 for i in range(1, end) if lines[i].split(":", 1)[0].strip() == key), 2)

    for key in sorted(set(map(str, meta)) - _FIELDS):
        problems.append(Problem(f"{where}:{field_line(key)}", f"unknown field {key!r}; fields: {sorted(_FIELDS)}"))
    domain = meta.get("domain")
    if not isinstance(domain, str) or not _NAME.match(domain):
        problems.append(Problem(f"{where}:{field_line('domain')}",
                                "'domain' must be a lower-case name (letters, digits, _ or -), e.g. asia"))  # fmt: skip
    kind = meta.get("kind")
    if kind not in KINDS:
        problems.append(Problem(f"{where}:{field_line('kind')}", f"'kind' must be one of {list(KINDS)}, got {kind!r}"))
    register = meta.get("register", "")
    if register not in ("", *REGISTERS):
        problems.append(Problem(f"{where}:{field_line('register')}",
                                f"'register' must be one of {list(REGISTERS)}, got {register!r}"))  # fmt: skip
    synthetic = meta.get("synthetic")
    if not isinstance(synthetic, bool):
        problems.append(Problem(f"{where}:{field_line('synthetic')}",
                                "'synthetic' is required: true for made-up text, false for real records"))  # fmt: skip
    title = meta.get("title", "")
    if isinstance(title, bool) or not isinstance(title, str | int | float):  # "title: 2024" is a title too
        problems.append(Problem(f"{where}:{field_line('title')}", "'title' must be text"))
    if not body:
        problems.append(Problem(f"{where}:{end + 1}", "no text after the front matter"))
    if len(problems) > before:
        return None
    digest = hashlib.sha256(f"{CHUNKER_VERSION}\n{sorted(meta.items())!r}\n{body}".encode()).hexdigest()
    return Document(source, str(title), str(domain), str(kind), str(register), bool(synthetic), body, digest)


# -- chunking ------------------------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def chunk_document(doc: Document, max_chars: int = DEFAULT_CHUNK_CHARS) -> list[Chunk]:
    """Cut a document into chunks of at most ``max_chars`` characters (see the module docstring)."""
    pieces = [p for block in _blocks(doc.body) for p in _fit(block, max_chars)]
    texts: list[str] = []
    for piece in pieces:  # pack consecutive pieces while they fit; a heading always starts a new chunk
        if texts and not piece.startswith("#") and len(texts[-1]) + 2 + len(piece) <= max_chars:
            texts[-1] = f"{texts[-1]}\n\n{piece}"
        else:
            texts.append(piece)
    meta: dict[str, str | int | bool] = {
        "source": doc.source, "title": doc.title, "domain": doc.domain, "kind": doc.kind,
        "register": doc.register, "synthetic": doc.synthetic, "digest": doc.digest,
    }  # fmt: skip
    return [Chunk(f"{doc.source}#{i}", t, {**meta, "chunk": i, "chunks": len(texts)}) for i, t in enumerate(texts)]


def _blocks(body: str) -> list[str]:
    """Paragraphs (blank-line separated); a heading line is its own block."""
    blocks: list[str] = []
    for para in re.split(r"\n\s*\n", body):
        current: list[str] = []
        for line in para.split("\n"):
            if line.lstrip().startswith("#"):
                if current:
                    blocks.append("\n".join(current).strip())
                current = [line]
            else:
                current.append(line)
        if current and "\n".join(current).strip():
            blocks.append("\n".join(current).strip())
    return blocks


def _fit(block: str, max_chars: int) -> list[str]:
    """Split a block longer than ``max_chars`` at sentence ends, then spaces, then anywhere."""
    if len(block) <= max_chars:
        return [block]
    out: list[str] = []
    for part in _pack(_SENTENCE_END.split(block), " ", max_chars):
        if len(part) <= max_chars:
            out.append(part)
            continue
        for word_run in _pack(part.split(" "), " ", max_chars):
            out += [word_run[i : i + max_chars] for i in range(0, len(word_run), max_chars)]
    return out


def _pack(parts: list[str], sep: str, max_chars: int) -> list[str]:
    packed: list[str] = []
    for part in parts:
        if packed and len(packed[-1]) + len(sep) + len(part) <= max_chars:
            packed[-1] = f"{packed[-1]}{sep}{part}"
        else:
            packed.append(part)
    return packed
