"""Where a study's jobs run: in this process, in a local pool of spawned processes, or on a Dask cluster.

A job is a plain dict and its function a module-level one (``runner.run_job``), so either
executor can ship both: the local pool pickles them into spawned interpreters, Dask into
its workers (which must see the same file system). Same jobs, same numbers, on any of them
(tests/studies/test_ablation.py trains a table both ways and compares the losses bit for bit).

    connect(address)                 a dask.distributed Client, or a ValueError saying why not
    map_jobs(fn, jobs, workers, client)   yields (index, fn(job)) as each job finishes
"""

from __future__ import annotations


def connect(scheduler: str, timeout: float = 10.0):
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` ("tcp://host:8786"), or a
    ValueError saying why not (dask missing, malformed address, nobody answering in ``timeout`` s)."""
    try:
        from dask.distributed import Client  # noqa: PLC0415
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'mrcnn_np[cluster]'") from None
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot connect to the Dask scheduler at {scheduler!r}: {e}") from None


def describe(workers: int, n_jobs: int, scheduler: str | None = None) -> str:
    """The executor in words, as the report records it."""
    if scheduler:
        return f"dask scheduler {scheduler}"
    if in_process(workers, n_jobs):
        return "this process, one run after the other"
    return f"local process pool (spawn), {min(workers, n_jobs)} workers, one thread each"


def in_process(workers: int, n_jobs: int) -> bool:
    """One worker or one job: no pool (a spawned process would only add its start-up time)."""
    return workers == 1 or n_jobs <= 1


def map_jobs(fn, jobs, workers: int, client=None):
    """Yield (index, fn(job)) of each job as it finishes: on the Dask ``client``'s cluster if
    given, else in a local pool of ``workers`` spawned processes (one worker or one job: in
    this process). ``fn`` must be importable by the workers; jobs are plain dicts."""
    if client is not None:
        from dask.distributed import as_completed  # noqa: PLC0415

        futures = client.map(fn, jobs, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for f in as_completed(futures, loop=client.loop):
                yield index[f.key], f.result()
        finally:
            client.cancel(futures)
        return
    if in_process(workers, len(jobs)):
        for i, job in enumerate(jobs):
            yield i, fn(job)
        return
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415

    # spawn: a fresh interpreter per worker (forking a process whose numba/BLAS thread pools
    # are running can deadlock the child)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            for f in futures:
                f.cancel()


__all__ = ["connect", "describe", "in_process", "map_jobs"]
