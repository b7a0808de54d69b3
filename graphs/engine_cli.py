"""The ``--engine`` options of ``causalsynth run`` and ``sample`` (the engine itself: ``graphs.dask_engine``)."""

from __future__ import annotations

from typing import Annotated

import typer

EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (this process) or dask (shards on a Dask cluster; same records).")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786 (default: a LocalCluster)."),
]
ShardsOpt = Annotated[
    int | None,
    typer.Option(
        "--shards",
        help="Shards the record ids are cut into (default: 4 per worker). Model and relational runs cut at batch "
        "boundaries: at most one shard per --batch-size records.",
    ),
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="Worker processes of the LocalCluster started without --scheduler.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="llama.cpp threads per context (default: CPU count / --concurrency)."),
]
