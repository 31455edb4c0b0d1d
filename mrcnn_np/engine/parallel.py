"""Data-parallel training on one machine: helper processes compute gradients of batch shards.

The teaching model is too small for multi-threaded kernels to pay off (``mrcnn_np.threads``),
so a training run uses one core. ``ShardWorkers`` uses the others the way the paper used its
8 GPUs: the batch is split into shards, each process runs forward and backward on its shard
with its own replica of the model, and the gradients are averaged (weighted by the shard's
number of images) before the one SGD step, which the main process takes. Replicas receive
the current parameters through shared memory at every step, so they never drift.

    main process                          helper k (k = 1 .. n-1)
    params -> shared memory  ----------->  copy params into its replica
    send shard k (images, targets)  ---->  forward + backward on shard k
    forward + backward on shard 0          gradients -> its shared-memory buffer
    wait, average the gradients  <-------  losses, counts
    clip, SGD step

What changes against one process: each shard's losses are normalised within the shard (as
each GPU's are in the paper), so the averaged gradient is that of the mean of the shard
losses, not exactly of the whole-batch loss; and each helper samples anchors and RoIs with
a generator derived from (seed, iteration, shard), so a run is deterministic for a given
number of workers (and resumes exactly) but differs from the one-process run.

Shapes::

    P parameters (all trainable tensors flattened and concatenated, float32)
    shared memory: params (P,), one gradient buffer (P,) per helper
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import shared_memory

import numpy as np

from mrcnn_np._checks import NonFiniteError


def shard_sizes(batch_size: int, workers: int) -> list:
    """Images per shard: as equal as possible, the main process's shard first."""
    if workers < 1 or batch_size < workers:
        raise ValueError(f"workers must be between 1 and the batch size ({batch_size}), got {workers}")
    base, extra = divmod(batch_size, workers)
    return [base + (1 if k < extra else 0) for k in range(workers)]


def balanced_order(counts, sizes) -> list:
    """An order of the batch's images that gives the shards similar work, and the lightest
    shard to the main process (which also loads data and takes the SGD step).

    counts: objects per image (the mask branch's cost grows with the positive RoIs, i.e.
    with the objects); sizes: images per shard (``shard_sizes``). Greedy: the image with the
    most objects goes to the least loaded shard that has room (ties: lower index first).
    Returns the image indices, shard 0's first, then shard 1's, ...
    """
    shards = [[] for _ in sizes]
    load = [0] * len(sizes)
    for i in sorted(range(len(counts)), key=lambda i: (-int(counts[i]), i)):
        k = min((k for k in range(len(sizes)) if len(shards[k]) < sizes[k]), key=lambda k: (load[k], k))
        shards[k].append(i)
        load[k] += int(counts[i])
    # the lightest shard of the main process's size goes to the main process
    main = min((k for k in range(len(sizes)) if sizes[k] == sizes[0]), key=lambda k: (load[k], k))
    shards[0], shards[main] = shards[main], shards[0]
    return [i for shard in shards for i in shard]


def shard_rng(seed: int, iteration: int, shard: int) -> np.random.Generator:
    """The sampling generator of helper ``shard`` at ``iteration`` (a pure function: resumable)."""
    return np.random.default_rng([int(seed), 3, int(iteration), int(shard)])


def _views(buf, params):
    """One float32 view per parameter into the flat shared buffer."""
    flat = np.ndarray((sum(p.data.size for p in params),), np.float32, buffer=buf)
    out, at = [], 0
    for p in params:
        out.append(flat[at:at + p.data.size].reshape(p.data.shape))
        at += p.data.size
    return flat, out


def losses_backward(out_losses, names):
    """Loss values and counts of a forward pass (a batch or a shard), then backward into the
    parameters when every loss is finite (a non-finite one is reported by the caller).
    Returns (values {name: float}, counts (positive anchors, positive RoIs), total)."""
    from mrcnn_np.detection.mask_rcnn import total_loss  # noqa: PLC0415

    values = {k: float(out_losses[k].data) for k in names if k in out_losses}
    counts = (int(out_losses.get("num_pos_anchors", 0)), int(out_losses.get("num_pos_rois", 0)))
    loss = total_loss(out_losses)
    if all(np.isfinite(v) for v in values.values()):
        loss.backward()
    return values, counts, float(loss.data)


def _helper(rank, model_cfg, seed, threads, names, param_name, grad_name, conn):
    """A helper process: a model replica that answers (iteration, images, targets) with gradients."""
    from mrcnn_np.detection.mask_rcnn import MaskRCNN  # noqa: PLC0415
    from mrcnn_np.memory import keep_freed_memory  # noqa: PLC0415
    from mrcnn_np.threads import set_num_threads  # noqa: PLC0415

    keep_freed_memory()          # reuse freed arrays: no page faults per step
    if threads is not None:
        set_num_threads(threads)
    model = MaskRCNN(model_cfg, seed=seed)
    model.train()
    params = list(model.parameters())
    shm_p = shared_memory.SharedMemory(name=param_name)
    shm_g = shared_memory.SharedMemory(name=grad_name)
    try:
        _, pviews = _views(shm_p.buf, params)
        _, gviews = _views(shm_g.buf, params)
        while True:
            msg = conn.recv()
            if msg is None:
                break
            it, images, targets = msg
            try:
                for p, v in zip(params, pviews):
                    np.copyto(p.data, v)
                model.sampling_rng = shard_rng(seed, it, rank)
                with np.errstate(all="ignore"):  # overflow is reported as divergence, not as warnings
                    values, counts, total = losses_backward(model(images, targets), names)
                for p, g in zip(params, gviews):
                    if p.grad is None:
                        g.fill(0.0)
                    else:
                        np.copyto(g, p.grad)
                conn.send(("ok", values, counts, total))
            except Exception as e:  # noqa: BLE001 - reported to the main process, which raises
                conn.send(("error", f"{type(e).__name__}: {e}", isinstance(e, NonFiniteError)))
            for p in params:  # the next step starts from no gradient
                p.grad = None
        del pviews, gviews
    finally:
        shm_p.close()
        shm_g.close()
        conn.close()


class ShardWorkers:
    """``workers - 1`` helper processes for data-parallel steps (use as a context manager).

    model_cfg, seed: as the main model (the replicas' initial weights do not matter: the
    parameters are copied in at every step). names: the loss names to report.
    """

    def __init__(self, model_cfg, params, seed: int, workers: int, names, threads: int | None = 1):
        if workers < 2:
            raise ValueError(f"ShardWorkers needs workers >= 2, got {workers}")
        self.params = params
        self.n = workers - 1
        nbytes = 4 * sum(p.data.size for p in params)
        self._shm = [shared_memory.SharedMemory(create=True, size=nbytes) for _ in range(1 + self.n)]
        self._pflat, _ = _views(self._shm[0].buf, params)
        self._gflat = [_views(s.buf, params)[0] for s in self._shm[1:]]
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited numba / BLAS thread state
        self._conns, self._procs = [], []
        try:
            for k in range(self.n):
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_helper, daemon=True, name=f"mrcnn_np-shard-{k + 1}",
                                   args=(k + 1, model_cfg, seed, threads, tuple(names), self._shm[0].name,
                                         self._shm[1 + k].name, there))
                proc.start()
                there.close()
                self._conns.append(here)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def submit(self, iteration: int, shards) -> None:
        """Publish the current parameters and send helper k its shard ``shards[k]`` (images, targets)."""
        if len(shards) != self.n:
            raise ValueError(f"{len(shards)} shards for {self.n} helpers")
        np.concatenate([p.data.reshape(-1) for p in self.params], out=self._pflat)
        for conn, (images, targets) in zip(self._conns, shards):
            conn.send((int(iteration), images, targets))

    def collect(self):
        """Wait for every helper: a list of (values, counts, total, flat gradient (P,)) per helper.
        A helper's exception is raised here as a RuntimeError with its message, or as a
        ``NonFiniteError`` when every failing helper met NaN or inf (the step diverged)."""
        out, errors, non_finite = [], [], []
        for k, conn in enumerate(self._conns):
            try:
                msg = conn.recv()
            except EOFError:
                errors.append(f"helper {k + 1} exited (exit code {self._procs[k].exitcode})")
                continue
            if msg[0] == "ok":
                out.append((msg[1], msg[2], msg[3], self._gflat[k]))
            else:
                errors.append(f"helper {k + 1}: {msg[1]}")
                non_finite.append(bool(msg[2]))
        if errors and len(non_finite) == len(errors) and all(non_finite):
            raise NonFiniteError("data-parallel step failed: " + "; ".join(errors))
        if errors:
            raise RuntimeError("data-parallel step failed: " + "; ".join(errors))
        return out

    def close(self) -> None:
        for conn in getattr(self, "_conns", []):
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in getattr(self, "_procs", []):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self._pflat = None
        self._gflat = []
        for s in getattr(self, "_shm", []):
            s.close()
            s.unlink()
        self._shm = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def combine(params, main_values, main_counts, main_total, helpers, sizes):
    """Average the shard gradients into ``params[i].grad`` (weights: images per shard) and the
    loss values likewise; counts are summed. Returns (values, counts, total)."""
    w = np.asarray(sizes, np.float64) / float(sum(sizes))
    names = list(main_values)  # in the model's order
    names += [k for h in helpers for k in h[0] if k not in names]
    values = {k: float(w[0] * main_values.get(k, 0.0) + sum(w[i + 1] * h[0].get(k, 0.0)
                                                             for i, h in enumerate(helpers)))
              for k in names}
    counts = tuple(main_counts[j] + sum(h[1][j] for h in helpers) for j in range(2))
    total = float(w[0] * main_total + sum(w[i + 1] * h[2] for i, h in enumerate(helpers)))
    at = 0
    for p in params:
        size = p.data.size
        g = np.zeros(p.data.shape, np.float32) if p.grad is None else p.grad * np.float32(w[0])
        for i, h in enumerate(helpers):
            g += np.float32(w[i + 1]) * h[3][at:at + size].reshape(p.data.shape)
        p.grad = g
        at += size
    return values, counts, total


__all__ = ["ShardWorkers", "balanced_order", "combine", "losses_backward", "shard_rng", "shard_sizes"]
