"""Compare what a text states (an :class:`~tools.text.extract.Extraction`) with the skeleton it was written for."""

from __future__ import annotations

from collections.abc import Mapping

from causalsynth.tools.text.extract import Extraction
from causalsynth.tools.text.lexicon import Lexicon
from causalsynth.tools.text.realisation import Violation


def _v(kind: str, var: str, expected: str | None, found: str | None, message: str) -> Violation:
    return Violation(kind=kind, variable=var, expected=expected, found=found, message=message)


def check_facts(lexicon: Lexicon, skeleton: Mapping[str, str], got: Extraction) -> list[Violation]:
    """Every violation of the skeleton by the text: contradictions, omitted observed facts, asserted latent ones."""
    out: list[Violation] = []
    stated, excluded, odd = got.asserted, got.excluded, got.out_of_range
    for var in lexicon.observed:
        want = skeleton[var]
        asserted = stated.get(var, [])
        if len(asserted) == 1 and asserted[0] == want and var not in excluded and var not in odd:
            continue  # stated once, as required: the common case
        label = lexicon.label(var)
        need = lexicon.describe(var, want)  # with its value range, so the fix is clear
        denied = excluded.get(var, [])
        if len(asserted) > 1:
            states = " and ".join(asserted)
            out.append(
                _v("contradiction", var, want, "/".join(asserted),
                   f"the text states {var} ({label}) two ways ({states}); the record says {var}={need}")
            )  # fmt: skip
        elif asserted and asserted[0] != want:
            out.append(
                _v("contradiction", var, want, asserted[0],
                   f"the text says {var}={asserted[0]} ({label}); the record says {var}={need}")
            )  # fmt: skip
        elif want in denied:
            out.append(
                _v("contradiction", var, want, f"not {want}",
                   f"the text denies {var}={want} ({label}); the record says {var}={need}")
            )  # fmt: skip
        elif var in got.out_of_range:
            value = got.out_of_range[var]
            out.append(
                _v("contradiction", var, want, f"{value:g}",
                   f"the text gives {var} ({label}) as {value:g}, outside every range; the record says {var}={need}")
            )  # fmt: skip
        elif not asserted:
            if var in got.uncertain:
                why = "states it only as uncertain"
            elif denied:
                why = f"states only that it is not {' or '.join(denied)}"
            else:
                why = "does not state it"
            out.append(
                _v("omission", var, want, None, f"the text {why}: {var} ({label}) must be stated as {var}={need}")
            )
    for var in lexicon.latent:
        if got.mentioned(var):
            found = "/".join(got.asserted.get(var, [])) or None
            out.append(
                _v("latent", var, None, found,
                   f"the text asserts {var} ({lexicon.label(var)}), which is latent and must not be stated")
            )  # fmt: skip
    return out
