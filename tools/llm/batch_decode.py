"""Many records' anchored texts decoded together in one llama.cpp context (sequence ids in one batch).

A record is a :class:`Program`: its prompt in parts (the shared prefix, reference blocks, its own tail) and the
steps of its reply (forced text: the fact phrases; gaps: one optional free sentence each). A round decodes a set
of programs: every llama.cpp call evaluates tokens of many records at once (a matrix-matrix product per layer
instead of a matrix-vector one, which is where a CPU gains), and the forced phrases go in as prompt tokens.

Prompt sharing: a prefix (system prompt, few-shot examples, the reference header) is evaluated once and its
key/value cells are shared with every record that starts with it (``llama_memory_seq_cp`` adds a sequence id to
cells; nothing is copied); they stay in the context's first cells after the round, for the next rounds (up to
:data:`KEPT_PREFIXES` prefixes; a run's records share one or two). A reference passage is evaluated once per round
as a block that sees the prefix and itself, and shared the same way by every record citing it. Blocks are placed in
parallel, all starting where the prefix ends (parallel context windows): a record's own tokens see its prefix and
all its blocks, but its second block was not encoded after its first. This is what makes a passage reusable whatever
precedes it; it is a different prompt from writing the passages one after the other, stated in the README.

Same seed, same text, at any batch size: llama.cpp's CPU kernels are not batch-invariant as they come (a
sequence's logits moved by up to 0.5 between a batch of 1 and a batch of 3, measured here), so every call is
shaped so that the numbers a record sees do not depend on its neighbours:

- every ubatch has 8 to 56 tokens, a multiple of 8 (padding with throw-away tokens of a scratch sequence): the
  quantised matrix kernels then take the same path for every row, and flash attention takes its per-row path
  (it switches to a tiled kernel at 64 rows and to a split-KV kernel for a single row);
- that per-row path skips masked cells and adds up the visible ones in cell order, so each record's cells are kept
  in one canonical order: prefixes first (a record sees only its own), then first blocks, then second blocks, then
  records' own tokens, never freeing a cell inside a round (a dropped partial sentence moves to a scratch sequence
  instead of leaving a hole); a round ends by freeing every cell but the prefixes', so the next round's cells all
  follow them;
- sampling is ours, per record, from the record's seed (numpy's PCG64), over the logits of that record alone.

The gap grammar is the anchor's (:meth:`causalsynth.tools.text.anchoring.Anchor.gap_gbnf`): nothing, or a space,
a capital letter, 1 to ``free_chars - 2`` characters of ``[A-Za-z0-9 ,'/%-]`` and a full stop. It is applied as a
vocabulary mask computed with numpy from each token's text; a sentence cut by its token budget is dropped.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.errors import UsageError

#: Prompt prefixes a context keeps evaluated between rounds (more, and it starts again from an empty cache).
KEPT_PREFIXES = 8
#: Tokens per llama.cpp call: below flash attention's 64-row tile, a multiple of the padding unit.
UBATCH = 56
PAD = 8
_FREE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,'/%-")
_CAPS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BLOCK = re.compile(r'<reference n="\d+">\n.*?\n</reference>\n', re.DOTALL)


@dataclass(frozen=True)
class Gap:
    """One optional free sentence: at most ``max_chars`` characters (capital to full stop), ``max_tokens`` tokens."""

    max_chars: int
    max_tokens: int
    seed: int


@dataclass(frozen=True)
class Program:
    """One record: its prompt in parts and the steps of its reply (forced text or a gap)."""

    prefix: str
    blocks: tuple[str, ...]
    tail: str
    steps: tuple[str | Gap, ...]
    #: completion tokens the whole reply may sample
    budget: int = 400


@dataclass
class Outcome:
    """What a program produced: the reply's text and its token counts (prompt as read, and sampled)."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish: str | None = None


def split_prompt(prompt: str) -> tuple[str, tuple[str, ...], str]:
    """``(prefix, reference blocks, tail)`` of a formatted prompt (blocks as :func:`prompts.reference_block` writes)."""
    blocks = list(_BLOCK.finditer(prompt))
    if not blocks:
        return prompt, (), ""
    # blocks must be adjacent (one reference block section); else treat everything after the first as the tail
    end = blocks[0].start()
    parts: list[str] = []
    for m in blocks:
        if m.start() != end:
            break
        parts.append(m.group(0))
        end = m.end()
    return prompt[: blocks[0].start()], tuple(parts), prompt[end:]


@dataclass
class _Node:
    """A shared part of the prompt (prefix or block), evaluated once per round on its own sequence."""

    seq: int
    tokens: list[int]
    start: int
    parent: _Node | None = None


@dataclass
class _Rec:
    """A program in flight."""

    seq: int
    program: Program
    out: Outcome
    budget: int
    pos: int = 0
    step: int = 0
    pending: list[int] = field(default_factory=list)
    gap: Gap | None = None
    state: int = 0  # in a gap: 0 start, 1 after a lone space, 2 inside the sentence
    chars: int = 0
    gap_tokens: list[int] = field(default_factory=list)
    gap_start: int = 0
    rng: Any = None
    done: bool = False


class BatchDecoder:
    """A llama.cpp context that decodes many programs per round (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        *,
        threads: int,
        n_ctx: int = 8192,
        max_seqs: int = 192,
        temperature: float = 0.7,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
    ):
        """``model``: a loaded ``llama_cpp._internals.LlamaModel`` (a ``Llama``'s ``_model``; weights shared)."""
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._utils import suppress_stdout_stderr

        self._L = llama_cpp
        self.temperature, self.top_p, self.top_k, self.min_p = temperature, top_p, top_k, min_p
        self.max_seqs = max_seqs
        self._model = model
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, UBATCH, UBATCH, max_seqs
        cp.n_outputs_max = max_seqs  # llama.cpp reserves logits for at least one output per sequence
        cp.n_threads = cp.n_threads_batch = threads
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        cp.kv_unified = True
        cp.no_perf = True
        with suppress_stdout_stderr(disable=False):
            try:
                self._ctx = _internals.LlamaContext(model=model, params=cp, verbose=False)
            except ValueError as exc:
                raise UsageError(f"llama.cpp cannot create a batched context: {exc}") from None
        self.n_ctx = n_ctx
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._vocab = self._model.vocab
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._batch = llama_cpp.llama_batch_init(UBATCH, 0, 1)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos = int(llama_cpp.llama_vocab_bos(self._vocab))
        self._pieces = [self._piece(t) for t in range(self.n_vocab)]
        self._eog = np.array([bool(llama_cpp.llama_vocab_is_eog(self._vocab, t)) for t in range(self.n_vocab)])
        self._classes()
        self._tok_cache: dict[str, list[int]] = {}
        #: the prefixes whose cells earlier rounds left in the context's first cells (see :meth:`_round`)
        self._kept: dict[str, _Node] = {}
        #: how many prefixes rounds have evaluated (a prefix kept from an earlier round is not evaluated again)
        self.prefix_evaluations = 0

    # -- vocabulary -------------------------------------------------------------------------------------------

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._L.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        return buf.raw[: max(0, n)]

    def tokenize(self, text: str, *, first: bool = False) -> list[int]:
        """Tokens of ``text`` (special tokens parsed; BOS first when the model wants one and ``first``)."""
        key = ("\x00" if first else "") + text
        if (hit := self._tok_cache.get(key)) is not None:
            return hit
        raw = text.encode()
        buf = (self._L.llama_token * (len(raw) + 8))()
        n = self._L.llama_tokenize(self._vocab, raw, len(raw), buf, len(buf), first and self._add_bos, True)
        if n < 0:
            raise UsageError(f"cannot tokenize a prompt of {len(raw)} bytes")
        toks = list(buf[:n])
        if len(self._tok_cache) < 4096:
            self._tok_cache[key] = toks
        return toks

    def _classes(self) -> None:
        """Per token, how it moves the gap automaton (see the module docstring); -1: not allowed."""
        v = self.n_vocab
        cont, cap, sp = np.full(v, -1, np.int32), np.full(v, -1, np.int32), np.full(v, -1, np.int32)
        cont_end, cap_end, sp_end = np.zeros(v, bool), np.zeros(v, bool), np.zeros(v, bool)
        space = np.zeros(v, bool)

        def body(s: str) -> tuple[int, bool]:  # chars added inside a sentence, and whether it ends it
            if s.endswith(".") and all(c in _FREE for c in s[:-1]):
                return len(s) - 1, True
            if s and all(c in _FREE for c in s):
                return len(s), False
            return -1, False

        for t, raw in enumerate(self._pieces):
            if self._eog[t] or not raw:
                continue
            try:
                s = raw.decode("ascii")
            except UnicodeDecodeError:
                continue
            cont[t], cont_end[t] = body(s)
            if s[0] in _CAPS:
                rest = s[1:]
                cap[t], cap_end[t] = body(rest) if rest else (0, False)
            if s == " ":
                space[t] = True
            elif s[0] == " " and len(s) > 1 and s[1] in _CAPS:
                rest = s[2:]
                sp[t], sp_end[t] = body(rest) if rest else (0, False)
        self._cont, self._cont_end = cont, cont_end
        self._cap, self._cap_end = cap, cap_end
        self._sp, self._sp_end, self._space = sp, sp_end, space

    def _allowed(self, r: _Rec) -> tuple[NDArray[np.bool_], NDArray[np.int32], NDArray[np.bool_]]:
        """The gap's allowed tokens now, each one's added characters, and whether it ends the sentence."""
        assert r.gap is not None
        most = r.gap.max_chars - 2  # characters after the capital letter, before the full stop
        if r.state == 0:
            add, end = self._sp, self._sp_end
            ok = (add >= 0) & (add <= most) & (~end | (add >= 1))
            return ok | self._eog | self._space, add, end
        if r.state == 1:
            add, end = self._cap, self._cap_end
        else:
            add, end = self._cont + r.chars, self._cont_end
            add = np.where(self._cont >= 0, add, -1).astype(np.int32)
        ok = (add >= 0) & (add <= most) & (~end | (add >= 1))
        return ok, add, end

    # -- sampling -----------------------------------------------------------------------------------------------

    def _sample(self, logits: NDArray[np.float32], ok: NDArray[np.bool_], rng: Any) -> int | None:
        """llama.cpp's chain over the allowed tokens: top-k, top-p, min-p, temperature, then one draw."""
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        z = logits[idx].astype(np.float64)
        if idx.size > self.top_k:
            part = np.argpartition(-z, self.top_k - 1)[: self.top_k]
            idx, z = idx[part], z[part]
        order = np.lexsort((idx, -z))
        idx, z = idx[order], z[order]
        p = np.exp(z - z[0])
        p /= p.sum()
        keep = int(np.searchsorted(np.cumsum(p), self.top_p)) + 1
        keep = max(1, min(keep, int((p >= self.min_p * p[0]).sum())))
        z = (z[:keep] - z[0]) / self.temperature
        w = np.cumsum(np.exp(z))
        return int(idx[min(int(np.searchsorted(w, rng.random() * w[-1], side="right")), keep - 1)])

    # -- llama.cpp calls ----------------------------------------------------------------------------------------

    def _decode(self, items: list[tuple[int, int, tuple[int, ...], bool]]) -> None:
        """One llama.cpp call: ``(token, position, sequences, wants logits)`` per token, padded to the shape."""
        n = len(items)
        size = max(PAD, -(-n // PAD) * PAD)
        b = self._batch
        b.n_tokens = size
        for i, (tok, pos, seqs, out) in enumerate(items):
            b.token[i], b.pos[i], b.logits[i] = tok, pos, out
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seqs[0]
        for i in range(n, size):  # throw-away tokens on the scratch sequence 0, removed right after
            b.token[i], b.pos[i], b.logits[i], b.n_seq_id[i] = 0, i - n, False, 1
            b.seq_id[i][0] = 0
        rc = self._L.llama_decode(self._ctx.ctx, b)
        self._L.llama_memory_seq_rm(self._mem, 0, -1, -1)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} (the context holds {self.n_ctx} cells)")

    def _logits(self, i: int) -> NDArray[np.float32]:
        ptr = self._L.llama_get_logits_ith(self._ctx.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _evaluate(self, work: list[tuple[int, list[int], int]]) -> None:
        """Evaluate token runs ``(sequence, tokens, first position)`` in as few calls as fit, in the given order."""
        items: list[tuple[int, int, tuple[int, ...], bool]] = []
        for seq, toks, start in work:
            for j, t in enumerate(toks):
                items.append((t, start + j, (seq,), False))
                if len(items) == UBATCH:
                    self._decode(items)
                    items = []
        if items:
            self._decode(items)

    # -- a round ------------------------------------------------------------------------------------------------

    def capacity(self, programs: Sequence[Program]) -> int:
        """How many of ``programs`` (from the first) one round can take: sequence ids and cells (estimated)."""
        seqs, cells = 2 + len(self._kept), sum(len(n.tokens) for n in self._kept.values())
        seen: set[tuple[int, str, str]] = {(-1, text, "") for text in self._kept}
        for n, p in enumerate(programs):
            new = {(-1, p.prefix, "")} | {(i, p.prefix, b) for i, b in enumerate(p.blocks)}
            new -= seen
            shared = sum(len(self.tokenize(k[1], first=True) if k[0] < 0 else self.tokenize(k[2])) for k in new)
            forced = len(self.tokenize(p.tail)) + sum(len(self.tokenize(x)) for x in p.steps if isinstance(x, str))
            sampled = min(p.budget, sum(x.max_tokens for x in p.steps if isinstance(x, Gap)))
            need = shared + forced + sampled + 64  # 64: tokens merging differently across forced pieces, and more
            if n and (seqs + len(new) + 1 > self.max_seqs or cells + need > self.n_ctx - 4 * UBATCH):
                return n
            seen |= new
            seqs += len(new) + 1
            cells += need
        return len(programs)

    def run(self, programs: Sequence[Program]) -> list[Outcome]:
        """Decode ``programs`` in rounds as large as the context allows; the texts do not depend on the grouping."""
        out: list[Outcome] = []
        rest = list(programs)
        while rest:
            k = self.capacity(rest)
            out += self._round(rest[:k])
            rest = rest[k:]
        return out

    def _round(self, programs: Sequence[Program]) -> list[Outcome]:
        L = self._L
        wanted = list(dict.fromkeys(p.prefix for p in programs))
        if len(self._kept.keys() | set(wanted)) > KEPT_PREFIXES:
            L.llama_memory_clear(self._mem, True)
            self._kept = {}
        # 0: padding tokens, 1: dropped partial sentences; the kept prefixes hold their own sequence ids
        held = {n.seq for n in self._kept.values()}
        seq_ids = (s for s in range(2, self.max_seqs) if s not in held)
        prefixes: dict[str, _Node] = {}
        blocks: dict[tuple[int, str, str], _Node] = {}
        slots = max((len(p.blocks) for p in programs), default=0)
        for text in wanted:  # the shared nodes, keyed by their text (a block also by its prefix and slot)
            prefixes[text] = self._kept.get(text) or _Node(next(seq_ids), self.tokenize(text, first=True), 0)
        new = {text: n for text, n in prefixes.items() if text not in self._kept}
        for slot in range(slots):
            for p in programs:
                if slot < len(p.blocks) and (key := (slot, p.prefix, p.blocks[slot])) not in blocks:
                    parent = prefixes[p.prefix]
                    blocks[key] = _Node(next(seq_ids), self.tokenize(p.blocks[slot]), len(parent.tokens), parent)
        # Canonical cell order: prefixes, first blocks, second blocks, ..., then the records' own tokens. A prefix
        # kept from an earlier round sits in the first cells already: what evaluating it again would write.
        self._evaluate([(n.seq, n.tokens, 0) for n in new.values()])
        self.prefix_evaluations += len(new)
        for slot in range(slots):
            nodes = [n for (s, _, _), n in blocks.items() if s == slot]
            for n in nodes:
                assert n.parent is not None
                L.llama_memory_seq_cp(self._mem, n.parent.seq, n.seq, -1, -1)
            self._evaluate([(n.seq, n.tokens, n.start) for n in nodes])
        recs: list[_Rec] = []
        for p in programs:
            root = prefixes[p.prefix]
            r = _Rec(seq=next(seq_ids), program=p, out=Outcome(prompt_tokens=len(root.tokens)), budget=p.budget)
            L.llama_memory_seq_cp(self._mem, root.seq, r.seq, -1, -1)
            r.pos = len(root.tokens)
            for slot, text in enumerate(p.blocks):
                node = blocks[(slot, p.prefix, text)]
                L.llama_memory_seq_cp(self._mem, node.seq, r.seq, node.start, node.start + len(node.tokens))
                r.pos = max(r.pos, node.start + len(node.tokens))
                r.out.prompt_tokens += len(node.tokens)
            self._queue(r, p.tail)
            recs.append(r)
        for n in blocks.values():
            L.llama_memory_seq_rm(self._mem, n.seq, -1, -1)  # the records hold those cells now
        try:
            self._loop(recs)
        except BaseException:
            L.llama_memory_clear(self._mem, True)
            self._kept = {}
            raise
        # Free every cell but the prefixes' (later rounds reuse them): the scratch sequences', the records' and so
        # the blocks'. Every cell freed follows all the prefixes' cells, so the next round's cells follow them too.
        for seq in (0, 1, *(r.seq for r in recs)):
            L.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self._kept |= new
        return [r.out for r in recs]

    def _queue(self, r: _Rec, text: str = "") -> None:
        """Queue the forced text up to the record's next gap (as prompt tokens) and open that gap."""
        r.gap = None
        while r.step < len(r.program.steps):
            step = r.program.steps[r.step]
            r.step += 1
            if isinstance(step, str):
                text += step
                r.out.text += step
            elif step.max_chars >= 3 and step.max_tokens > 0 and r.budget > 0:
                r.gap, r.state, r.chars, r.gap_tokens = step, 0, 0, []
                r.rng = np.random.default_rng([step.seed & 0xFFFFFFFF, step.seed >> 32 & 0xFFFFFFFF, 0x6A9])
                break
        if text:
            toks = self.tokenize(text)
            r.pending += toks
            r.out.prompt_tokens += len(toks)
        r.gap_start = r.pos + len(r.pending)
        r.done = r.gap is None
        if r.gap is not None and not r.pending:  # a gap needs the logits of the token before it
            raise RuntimeError("a gap must follow some prompt text")

    def _loop(self, recs: list[_Rec]) -> None:
        """Calls until every record is done; each call mixes records' gap tokens and pending prompt tokens."""
        while True:
            items: list[tuple[int, int, tuple[int, ...], bool]] = []
            wants: list[tuple[int, _Rec]] = []
            # gap tokens first (one per record), then prompt runs: the calls stay full while sentences are written
            for r in sorted((r for r in recs if r.pending), key=lambda r: len(r.pending) > 1):
                room = UBATCH - len(items)
                if room <= 0:
                    break
                take = r.pending[:room]
                del r.pending[:room]
                for j, t in enumerate(take):
                    last = not r.pending and j == len(take) - 1 and r.gap is not None
                    if last:
                        wants.append((len(items), r))
                    items.append((t, r.pos, (r.seq,), last))
                    r.pos += 1
            if not items:
                if any(not r.done for r in recs):
                    raise RuntimeError("batched decoding stalled")
                return
            self._decode(items)
            for i, r in wants:
                self._gap_token(r, self._logits(i))

    def _gap_token(self, r: _Rec, logits: NDArray[np.float32]) -> None:
        """Sample the record's next gap token: queue it, or close the gap (keeping or dropping the sentence)."""
        assert r.gap is not None
        ok, add, end = self._allowed(r)
        tok = self._sample(logits, ok, r.rng)
        if tok is None or self._eog[tok]:  # end of turn before any sentence (the mask allows it only then)
            r.out.completion_tokens += tok is not None
            r.out.finish = "stop"
            self._drop_gap(r)
            return
        r.out.completion_tokens += 1
        r.budget -= 1
        r.gap_tokens.append(tok)
        if r.state == 0 and self._space[tok]:
            r.state = 1
        else:
            r.state, r.chars = 2, int(add[tok])
        if r.state == 2 and bool(end[tok]):  # the full stop: the sentence is kept
            r.out.text += b"".join(self._pieces[t] for t in r.gap_tokens).decode("utf-8", "replace")
            r.out.finish = "stop"
            r.pending.append(tok)
            self._queue(r)
            return
        if len(r.gap_tokens) >= r.gap.max_tokens or r.budget <= 0:  # out of tokens mid-sentence: drop it
            r.out.finish = "length"
            self._drop_gap(r)
            return
        r.pending.append(tok)

    def _drop_gap(self, r: _Rec) -> None:
        """Close the gap without a sentence; cells of tokens already evaluated move to the scratch sequence 1."""
        if r.pos > r.gap_start:  # the cells stay occupied (no hole in the canonical order); the record forgets them
            self._L.llama_memory_seq_cp(self._mem, r.seq, 1, r.gap_start, r.pos)
            self._L.llama_memory_seq_rm(self._mem, r.seq, r.gap_start, r.pos)
            r.pos = r.gap_start
        self._queue(r)
