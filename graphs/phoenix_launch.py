"""``phoenix serve`` with its OTLP/gRPC receiver on 127.0.0.1 (Phoenix itself binds it to every interface, ``[::]``).

``graphs.phoenix`` runs this file with the Python of Phoenix's own venv (``build/phoenix-venv``): it imports nothing
of causalsynth. The HTTP side (UI, REST, OTLP/HTTP) follows ``PHOENIX_HOST``; only the gRPC port needs this.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import grpc.aio  # type: ignore[import-untyped]

_new_server = grpc.aio.server


def _loopback(address: str) -> str:
    """``[::]:4317`` -> ``127.0.0.1:4317``."""
    return "127.0.0.1:" + address.rpartition(":")[2]


def loopback_server(*args: Any, **kwargs: Any) -> Any:
    """``grpc.aio.server`` whose ports bind to 127.0.0.1 whatever address they are given."""
    server = _new_server(*args, **kwargs)
    insecure, secure = server.add_insecure_port, server.add_secure_port
    server.add_insecure_port = lambda address: insecure(_loopback(address))
    server.add_secure_port = lambda address, credentials: secure(_loopback(address), credentials)
    return server


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # graphs/phoenix.py is not Phoenix
    grpc.aio.server = loopback_server  # Phoenix calls grpc.aio.server(...) when it starts its receiver
    from phoenix.server.main import main  # type: ignore[import-not-found]

    sys.argv[0] = "phoenix"
    sys.exit(main())
