"""The chat-model realiser: prompts name the right facts, calls respect the concurrency cap, failures stay local."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.realisation import RealisationRequest, Violation
from tests.conftest import ROOT
from tests.fakes import ScriptedChatModel


@pytest.fixture(scope="module")
def asia_spec() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml")


def skeleton(domain: Domain, **given: str) -> dict[str, str]:
    return {v: given.get(v, domain.network.states(v)[0]) for v in domain.network.names}


def test_prompt_states_every_observed_fact_and_hides_latent_ones(asia_spec):
    realiser = ChatRealiser(ScriptedChatModel(), asia_spec.lexicon)
    sk = skeleton(asia_spec, smoke="no", either="yes")
    system, human = realiser.messages(RealisationRequest(record_id=0, skeleton=sk))
    for var in asia_spec.lexicon.observed:
        assert f"- {asia_spec.lexicon.label(var)}: {sk[var]}" in str(human.content)
    assert "either" not in str(human.content).split("Facts to state:")[1].split("(for example")[0]
    assert "Do not mention: tuberculosis or lung cancer" in str(system.content)


def test_correction_prompt_carries_the_previous_text_and_the_violations(asia_spec):
    realiser = ChatRealiser(ScriptedChatModel(), asia_spec.lexicon)
    wrong = Violation(kind="contradiction", variable="smoke", expected="no", found="yes",
                      message="the text says smoke=yes (smoker); the record says smoke=no")  # fmt: skip
    request = RealisationRequest(record_id=0, skeleton=skeleton(asia_spec), attempt=1, feedback=[wrong],
                                 previous_text="The patient smokes.")  # fmt: skip
    last = str(realiser.messages(request)[-1].content)
    assert "The patient smokes." in last and "the record says smoke=no" in last


class SlowModel(ScriptedChatModel):
    """Counts calls in flight."""

    lock: Any = None
    in_flight: int = 0
    peak: int = 0

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.05)
        with self.lock:
            self.in_flight -= 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage("No shortness of breath."))])


@pytest.mark.parametrize("cap", [1, 3])
def test_concurrency_cap_is_respected(asia_spec, cap):
    model = SlowModel(lock=threading.Lock())
    realiser = ChatRealiser(model, asia_spec.lexicon, concurrency=cap)
    out = realiser.realise([RealisationRequest(record_id=i, skeleton=skeleton(asia_spec)) for i in range(12)])
    assert len(out) == 12 and all(r.llm_calls == 1 for r in out)
    assert model.peak == cap


def test_realise_works_inside_a_running_event_loop(asia_spec):
    import asyncio

    realiser = ChatRealiser(ScriptedChatModel(), asia_spec.lexicon)

    async def inside() -> list[str]:
        return [r.text for r in realiser.realise([RealisationRequest(record_id=0, skeleton=skeleton(asia_spec))])]

    (text,) = asyncio.run(inside())
    assert text


def test_a_failing_call_is_reported_per_record(asia_spec):
    model = ScriptedChatModel(fail_for="bronchitis: no")
    realiser = ChatRealiser(model, asia_spec.lexicon)
    ok, failed = realiser.realise(
        [
            RealisationRequest(record_id=0, skeleton=skeleton(asia_spec, bronc="yes")),
            RealisationRequest(record_id=1, skeleton=skeleton(asia_spec, bronc="no")),
        ]
    )
    assert ok.error is None and ok.text
    assert failed.error == "RuntimeError: model overloaded" and failed.text == ""


class LoopBoundModel(ScriptedChatModel):
    """Like a provider client: remembers the event loop of its first call and fails on any other loop."""

    loop_ids: list[int] = []
    sleep: float = 0.0

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        import asyncio

        self.loop_ids.append(id(asyncio.get_running_loop()))
        if len(set(self.loop_ids)) > 1:
            raise RuntimeError("Event loop is closed")
        await asyncio.sleep(self.sleep)
        return self._generate(messages)


def test_every_batch_runs_on_the_same_event_loop(asia_spec):
    model = LoopBoundModel(loop_ids=[])
    realiser = ChatRealiser(model, asia_spec.lexicon, concurrency=2)
    for batch in range(3):
        out = realiser.realise(
            [RealisationRequest(record_id=batch * 10 + i, skeleton=skeleton(asia_spec)) for i in range(4)]
        )
        assert all(r.error is None for r in out), [r.error for r in out]
    assert len(model.loop_ids) == 12 and len(set(model.loop_ids)) == 1


def test_a_hung_call_times_out_and_fails_only_its_record(asia_spec):
    model = LoopBoundModel(loop_ids=[], sleep=5.0)
    realiser = ChatRealiser(model, asia_spec.lexicon, timeout=0.2, retries=0)
    (res,) = realiser.realise([RealisationRequest(record_id=0, skeleton=skeleton(asia_spec))])
    assert res.error == "TimeoutError: no reply within 0.2 s" and res.llm_calls == 1


# -- anchored requests per kind of model ---------------------------------------------------------------------
class KwargsModel(ScriptedChatModel):
    """Records each call's extra options, and writes back the anchor's plain text."""

    seen: list[dict[str, Any]] = []

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        self.seen.append(kw)
        grammar = kw.get("extra_body", {}).get("grammar", "")
        phrases = re.findall(r'"((?:[^"\\]|\\.)*)"', grammar.split("\n", 1)[0])
        text = " ".join(p for p in phrases if p.strip())
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def test_llama_server_anchoring_sends_the_grammar_and_a_seed(asia_spec):
    model = KwargsModel(seen=[])
    realiser = ChatRealiser(model, asia_spec.lexicon, realize="anchored", anchoring="llama-server", seeded_calls=True)
    request = RealisationRequest(record_id=4, skeleton=skeleton(asia_spec, smoke="no"))
    (result,) = realiser.realise([request])
    (kw,) = model.seen
    anchor = realiser.anchor(request)
    assert anchor is not None and kw["extra_body"]["grammar"] == anchor.gbnf()
    assert isinstance(kw["seed"], int) and result.text == anchor.skeleton_text


class StructuredModel(ScriptedChatModel):
    """A model with structured output: replies with a JSON object whose ``text`` is the anchor's plain text."""

    schemas: list[dict[str, Any]] = []

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kw: Any) -> Any:
        from langchain_core.messages import AIMessage
        from langchain_core.runnables import RunnableLambda

        self.schemas.append(schema)
        pattern = schema["properties"]["text"]["pattern"]
        text = re.sub(r"\\(.)", r"\1", re.sub(r"\(\?:.*?\)\?", "", pattern[1:-1]))

        def reply(_: Any) -> dict[str, Any]:
            return {"raw": AIMessage(f'{{"text": "{text}"}}', usage_metadata={"input_tokens": 50, "output_tokens": 20,
                    "total_tokens": 70}), "parsed": {"text": text}, "parsing_error": None}  # fmt: skip

        return RunnableLambda(reply)


def test_structured_anchoring_uses_the_pattern_schema_and_reads_the_text_field(asia_spec):
    model = StructuredModel(schemas=[])
    realiser = ChatRealiser(model, asia_spec.lexicon, realize="anchored", anchoring="structured")
    request = RealisationRequest(record_id=2, skeleton=skeleton(asia_spec))
    (result,) = realiser.realise([request])
    anchor = realiser.anchor(request)
    assert anchor is not None and model.schemas == [anchor.json_schema()]
    assert result.error is None and anchor.matches(result.text) and result.prompt_tokens == 50


def test_a_model_without_structured_output_falls_back_to_prompting(asia_spec):
    realiser = ChatRealiser(ScriptedChatModel(), asia_spec.lexicon, realize="anchored", anchoring="structured")
    (result,) = realiser.realise([RealisationRequest(record_id=0, skeleton=skeleton(asia_spec))])
    assert result.error is None and realiser.anchoring == "prompt"
