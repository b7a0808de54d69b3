"""Arize Phoenix, self-hosted: ``causalsynth trace serve`` and ``run --trace phoenix``.

The server (``arize-phoenix``) has pins of its own, so it lives in a venv of its own, ``build/phoenix-venv``
(``make phoenix`` creates it; ``make setup`` and ``make test`` depend on it). :func:`serve_command` starts it on
127.0.0.1 with telemetry, external resources (fonts, scripts from a CDN) and the agent assistant off.

The run side is :class:`PhoenixTracer`: OpenInference's LangChain tracer (the one ``LangChainInstrumentor``
installs globally), given to this run's callbacks only, with node inputs and outputs summarised like every other
trace (``graphs.tracing.summarise``) and LangGraph's hidden internal steps left out. Its spans go over OTLP/HTTP to
``{endpoint}/v1/traces``; the endpoint is ``PHOENIX_COLLECTOR_ENDPOINT`` (``run --trace-endpoint`` sets it),
default ``http://127.0.0.1:6006``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from causalsynth.tools.errors import UsageError

DEFAULT_ENDPOINT = "http://127.0.0.1:6006"
DEFAULT_PORT = 6006
PROJECT = "causalsynth"
#: The Phoenix venv of a source checkout (created by ``make phoenix``).
VENV = Path(__file__).resolve().parents[1] / "build" / "phoenix-venv"
LAUNCHER = Path(__file__).resolve().with_name("phoenix_launch.py")
INSTALL_HINT = (
    "Phoenix is not installed: run 'make phoenix' in the causalsynth checkout (a venv of its own, "
    "build/phoenix-venv, with arize-phoenix), or set CAUSALSYNTH_PHOENIX to a phoenix executable"
)


def endpoint() -> str:
    """The collector's base URL: ``PHOENIX_COLLECTOR_ENDPOINT``, else the default (no trailing ``/v1/traces``).

    Raises:
        UsageError: the URL is not ``http(s)://HOST[:PORT]``.
    """
    url = os.environ.get("PHOENIX_COLLECTOR_ENDPOINT") or DEFAULT_ENDPOINT
    return check_endpoint(url)


def check_endpoint(url: str) -> str:
    """``url`` without a trailing slash or ``/v1/traces``.

    Raises:
        UsageError: not an ``http(s)://HOST[:PORT]`` URL, named.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in range)
    except ValueError:
        raise UsageError(f"--trace-endpoint: not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--trace-endpoint must be an http(s)://HOST:PORT URL of a Phoenix server, got {url!r}")
    base = url.rstrip("/")
    return base[: -len("/v1/traces")] if base.endswith("/v1/traces") else base


def check_server(url: str | None = None) -> str:
    """The collector's base URL (``url``, else :func:`endpoint`), once something listens there.

    Raises:
        UsageError: the URL is malformed, or nothing listens there.
    """
    base = check_endpoint(url) if url is not None else endpoint()
    if not _reachable(base):
        raise UsageError(
            f"--trace phoenix: no Phoenix server at {base} (start one with 'causalsynth trace serve', "
            "or give its address with --trace-endpoint or PHOENIX_COLLECTOR_ENDPOINT)"
        )
    return base


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _tracer_class(summarise: Callable[[Any], Any], hidden: str) -> type:
    """``PhoenixTracer``, built on first use (OpenTelemetry and OpenInference load only for ``--trace phoenix``).

    ``summarise`` and ``hidden`` are ``graphs.tracing``'s summary of a node's input or output and LangGraph's tag of
    its internal steps (passed in: ``graphs.tracing`` imports this module).
    """
    from langchain_core.tracers.schemas import Run
    from openinference.instrumentation.langchain._tracer import OpenInferenceTracer, _as_utc_nano
    from openinference.semconv.trace import SpanAttributes
    from opentelemetry import context as context_api
    from opentelemetry import trace as trace_api

    class PhoenixTracer(OpenInferenceTracer):
        """OpenInference spans of one run: chain inputs and outputs summarised, hidden steps left out.

        Tags (the caller's and ours) go in ``tag.tags``. A hidden step's children hang under its nearest visible
        ancestor; a run with no parent span starts a trace of its own (not the caller's OpenTelemetry context).
        The run is its own Phoenix session (the root span's id), not the checkpointer's thread id that every
        durable run shares, unless the caller's metadata names one (``session_id`` or ``conversation_id``).
        """

        def __init__(self, tracer: Any) -> None:
            super().__init__(tracer, True)
            self._hidden: dict[UUID, Any] = {}  # hidden run -> its nearest visible ancestor's span (or None)
            self._session: str | None = None

        def _parent_span(self, parent_id: UUID | None) -> Any:
            if parent_id is None:
                return None
            span = self._spans_by_run.get(parent_id)
            return span if span is not None else self._hidden.get(parent_id)

        def _start_trace(self, run: Run) -> None:  # type: ignore[override]
            self.run_map[str(run.id)] = run
            if run.parent_run_id is None and self._session is None:
                self._session = str(run.id)
            with self._lock:
                parent = self._parent_span(run.parent_run_id)
                if hidden in (run.tags or []):
                    self._hidden[run.id] = parent
                    return
            context = trace_api.set_span_in_context(parent) if parent is not None else context_api.Context()
            span = self._tracer.start_span(name=run.name, context=context, start_time=_as_utc_nano(run.start_time))
            with self._lock:
                self._spans_by_run[run.id] = span

        def _on_chain_start(self, run: Run) -> None:
            run.inputs = summarise(run.inputs)  # drop the reference to the whole batch now

        def _end_trace(self, run: Run) -> None:  # type: ignore[override]
            with self._lock:
                was_hidden = run.id in self._hidden
                self._hidden.pop(run.id, None)
            if was_hidden:
                self.run_map.pop(str(run.id), None)
                return
            if run.run_type not in ("llm", "chat_model"):
                run.inputs = summarise(run.inputs)
                run.outputs = summarise(run.outputs or {})
            meta = dict((run.extra or {}).get("metadata") or {})
            if self._session is not None and not (meta.get("session_id") or meta.get("conversation_id")):
                run.extra = {**(run.extra or {}), "metadata": {**meta, "session_id": self._session}}
            span = self._spans_by_run.get(run.id)
            if span is not None and run.tags:  # OpenInference's LangChain tracer leaves tags out
                span.set_attribute(SpanAttributes.TAG_TAGS, [str(t) for t in run.tags])
            super()._end_trace(run)

    return PhoenixTracer


class PhoenixExport:
    """The tracer of a ``--trace phoenix`` run and its OTLP exporter; :meth:`close` sends what is left."""

    def __init__(
        self,
        summarise: Callable[[Any], Any],
        hidden: str,
        url: str | None = None,
        project: str | None = None,
    ) -> None:
        """Connect to the collector at ``url`` (default: :func:`endpoint`); spans go to Phoenix project ``project``.

        Raises:
            UsageError: the endpoint is malformed or nothing listens there.
        """
        base = check_server(url)
        from openinference.instrumentation import OITracer, TraceConfig
        from openinference.semconv.resource import ResourceAttributes
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.url = base
        self.project = project or os.environ.get("PHOENIX_PROJECT_NAME") or PROJECT
        resource = Resource.create({ResourceAttributes.PROJECT_NAME: self.project, "service.name": "causalsynth"})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        tracer = OITracer(self.provider.get_tracer("causalsynth"), config=TraceConfig())
        self.handler = _tracer_class(summarise, hidden)(tracer)

    def close(self) -> None:
        """Send every span still queued, then stop the exporter."""
        self.provider.force_flush(timeout_millis=30_000)
        self.provider.shutdown()


def find_phoenix() -> str:
    """The ``phoenix`` executable: ``$CAUSALSYNTH_PHOENIX``, the checkout's ``build/phoenix-venv``, else on PATH.

    Raises:
        UsageError: none found (the message says how to install it).
    """
    named = os.environ.get("CAUSALSYNTH_PHOENIX")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise UsageError(f"CAUSALSYNTH_PHOENIX={named}: not an executable file")
        return named
    for candidate in (VENV / "bin" / "phoenix", shutil.which("phoenix")):
        if candidate is not None and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return str(candidate)
    raise UsageError(INSTALL_HINT)


def default_dir() -> Path:
    """Phoenix's folder when ``trace serve`` is given none: ``$XDG_DATA_HOME/causalsynth/phoenix``."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "causalsynth" / "phoenix"


def serve_env(port: int, grpc_port: int, working_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Phoenix runs in: loopback, its own folder, no telemetry, no external resources."""
    env = dict(os.environ if base is None else base)
    env.update({
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(working_dir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    })  # fmt: skip
    return env


def serve_command(port: int, grpc_port: int | None, working_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``phoenix serve`` for :func:`serve`.

    Raises:
        UsageError: Phoenix is not installed, a port is out of range, or the folder cannot be made.
    """
    for name, value in (("--port", port), ("--grpc-port", grpc_port)):
        if value is not None and not 1 <= value <= 65535:
            raise UsageError(f"{name} must be a port number (1-65535), got {value}")
    grpc = grpc_port if grpc_port is not None else port + 1
    if grpc == port:
        raise UsageError(f"--grpc-port {grpc} is the HTTP port too: give another one")
    executable = find_phoenix()
    try:
        working_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--dir {working_dir}: cannot create it: {exc.strerror or exc}") from None
    python = Path(executable).parent / "python"
    # Through the launcher, with the Python of Phoenix's venv: its gRPC receiver then binds 127.0.0.1 too.
    command = [str(python), str(LAUNCHER), "serve"] if python.is_file() else [executable, "serve"]
    return command, serve_env(port, grpc, working_dir.resolve())


def serve(port: int, grpc_port: int | None, working_dir: Path, say: Callable[[str], None]) -> None:
    """Replace this process with ``phoenix serve`` (Ctrl-C and signals reach Phoenix itself)."""
    command, env = serve_command(port, grpc_port, working_dir)
    say(f"Phoenix on http://127.0.0.1:{port} (data in {working_dir}); Ctrl-C stops it.")
    say(f"Send a run's spans there: causalsynth run SPEC ... --trace phoenix --trace-endpoint http://127.0.0.1:{port}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
