"""Where the time of one ``teaching`` training step goes: forward and backward per component.

A step is forward + backward + SGD update on a batch of four 128 x 128 shapes images (the
step of ``bench_train_step.py``), split into backbone body, FPN, RPN (head, anchors,
proposal filtering, target assignment, loss), RoI ops (multi-level pooling for the box and
mask branches), box head (fc layers, predictor, sampling, loss), mask head (convs, deconv,
predictor, mask targets, loss), the optimizer and what is left.

    python -m bench.profile_train_step [--steps 10] [--threads 1] [--perf 2] [--json PATH]

Method. Nothing in ``mrcnn_np`` is edited; this script wraps things at run time. Forward:
each component's modules (their ``forward``) and the module-level functions the model looks
up by name (``pool_rois``, ``select_training_samples``, ``fastrcnn_loss``, ``mask_loss``,
``project_masks_on_boxes``, ``prepare_batch``) run inside timed scopes; a nested scope's
time is taken out of its parent's, so each component gets its exclusive time and the
outermost scope (``MaskRCNN.forward``) keeps only the glue. Backward: when a scope exits,
the graph is walked from its outputs through ``_parents`` and every untagged node is tagged
with the scope's component (nodes of earlier scopes are already tagged, so the walk stops
there). Before ``backward()`` each node's ``_backward_fn`` is wrapped with a timer for its
component; backward time minus the timed closures is the engine's bookkeeping (topological
sort, gradient accumulation). Tagging and wrapping are left out of the step time. Each
instrumented step is followed by a plain one on the same batch (same RoI samples), which
checks that the parts add up to the real step time. With one thread the clock is the
process's CPU time, so time spent waiting for a core on a shared machine is not counted.
"Python overhead" is estimated on separate steps under cProfile, which overstates it (see
the note printed with it); ``--perf N`` measures the interpreter's share with Linux perf.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pathlib
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1]

COMPONENTS = ("backbone", "fpn", "rpn", "roi_ops", "box_head", "mask_head", "transform", "other")
NOTES = {"transform": "prepare_batch: resize, normalise, pad", "other": "forward glue + loss sum"}
DSO_NOTES = (("libpython", "the Python interpreter"), ("python3", "the Python interpreter"), ("[jit]", "numba kernels"),
             ("blas", "BLAS (GEMM)"), ("_multiarray_umath", "NumPy C code"), ("libc", "malloc, memcpy, memset"),
             ("kernel", "OS kernel (page faults: zeroing freshly mapped memory)"))
clock = time.perf_counter                 # main() switches to time.process_time with one thread


class StepProfiler:
    """Exclusive forward time per component, and backward time per component via graph tags."""

    def __init__(self):
        self.enabled = False
        self.reset()

    def reset(self):
        self.fwd, self.bwd = defaultdict(float), defaultdict(float)
        self.tags = {}                # id(node) -> (component, node): kept alive so ids stay unique
        self.stack = []               # open scopes: [start time, time of nested scopes]
        self.overhead = 0.0           # time spent tagging (left out of the step time)

    def scope(self, comp, fn):
        def wrapped(*args, **kwargs):
            if not self.enabled:
                return fn(*args, **kwargs)
            frame = [clock(), 0.0]
            self.stack.append(frame)
            out = fn(*args, **kwargs)
            t1 = clock()
            self.stack.pop()
            self.fwd[comp] += t1 - frame[0] - frame[1]
            self.tag(out, comp)
            t2 = clock()
            self.overhead += t2 - t1
            if self.stack:                       # the parent does not count us
                self.stack[-1][1] += t2 - frame[0]
            return out
        return wrapped

    def tag(self, out, comp):
        from mrcnn_np.autodiff.tensor import Tensor
        todo = [out]
        while todo:
            x = todo.pop()
            if isinstance(x, (list, tuple)):
                todo.extend(x)
            elif isinstance(x, dict):
                todo.extend(x.values())
            elif isinstance(x, Tensor) and x._backward_fn is not None and id(x) not in self.tags:
                self.tags[id(x)] = (comp, x)
                todo.extend(x._parents)

    def wrap_backward(self, loss):
        """Time every node's backward closure into its component's backward total."""
        def timed(fn, comp):
            def run(g):
                t0 = clock()
                r = fn(g)
                self.bwd[comp] += clock() - t0
                return r
            return run
        for node in graph_nodes(loss):
            if node._backward_fn is not None:
                node._backward_fn = timed(node._backward_fn, self.tags.get(id(node), ("other",))[0])
        self.tags = {}        # let backward() free activations as it goes, as in a plain step


def graph_nodes(root) -> list:
    """Every tensor of ``root``'s graph, each once (the order does not matter here: each
    backward closure is wrapped once, and backward() finds its own order)."""
    seen, todo, out = set(), [root], []
    while todo:
        t = todo.pop()
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
            todo.extend(t._parents)
    return out


def instrument(model, prof):
    """Wrap the component modules' ``forward`` and the functions the model looks up by name."""
    from mrcnn_np.detection import mask_rcnn, roi_heads
    rh = model.roi_heads
    for comp, mod in (("other", model), ("backbone", model.backbone.body), ("fpn", model.backbone.fpn),
                      ("rpn", model.rpn), ("box_head", rh.box_head), ("box_head", rh.box_predictor),
                      ("mask_head", rh.mask_head), ("mask_head", rh.mask_predictor)):
        mod.forward = prof.scope(comp, mod.forward)        # Module.__call__ reads self.forward
    for comp, ns, name in (("transform", mask_rcnn, "prepare_batch"), ("roi_ops", roi_heads, "pool_rois"),
                           ("box_head", roi_heads, "select_training_samples"),
                           ("box_head", roi_heads, "fastrcnn_loss"), ("mask_head", roi_heads, "mask_loss"),
                           ("mask_head", roi_heads, "project_masks_on_boxes")):
        setattr(ns, name, prof.scope(comp, getattr(ns, name)))
    return prof.scope("other", mask_rcnn.total_loss)


def python_overhead(step, data):
    """cProfile the steps: tottime of Python-level functions (not numba kernels, not
    ``{built-in ...}``/``{method ...}`` C entries) as a fraction of the profiled time."""
    from numba.core.dispatcher import Dispatcher
    pr = cProfile.Profile()
    for imgs, tgts in data:
        pr.enable()
        step(imgs, tgts)
        pr.disable()
    stats, n = pstats.Stats(pr).stats, len(data)          # key -> (cc, ncalls, tottime, cumtime, callers)
    numba = {(f.py_func.__code__.co_filename, f.py_func.__code__.co_firstlineno, f.py_func.__name__)
             for name, mod in list(sys.modules.items()) if name.startswith("mrcnn_np")
             for f in vars(mod).values() if isinstance(f, Dispatcher)}
    kind = {k: "numba" if k in numba else "C" if k[0] == "~" else "python" for k in stats}
    total = sum(v[2] for v in stats.values())
    share = {c: sum(v[2] for k, v in stats.items() if kind[k] == c) / total for c in ("python", "numba")}

    def where(k):
        f = k[0].replace(str(ROOT) + os.sep, "").split("site-packages" + os.sep)[-1]
        return f"{k[2]} ({f}:{k[1]})" if k[0] != "~" else k[2]
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:15]
    return {"python_fraction": share["python"], "numba_fraction": share["numba"], "profiled_step_ms": 1000 * total / n,
            "top": [{"function": where(k), "ncalls": round(v[1] / n), "tottime_ms_per_step": 1000 * v[2] / n,
                     "kind": kind[k]} for k, v in top]}


def perf_breakdown(step, data):
    """Share of CPU samples per shared object, from ``perf record`` attached to this process."""
    path = tempfile.NamedTemporaryFile(suffix=".perf", delete=False).name
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-p", str(os.getpid()), "-o", path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)                      # let perf attach (a sleeping process gives no samples)
    for imgs, tgts in data:
        step(imgs, tgts)
    rec.send_signal(signal.SIGINT)
    rec.wait()
    rep = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                         capture_output=True, text=True).stdout
    os.unlink(path)
    return [(float(m[1]), m[2]) for m in (re.match(r"\s*([\d.]+)%\s+(\S+)", s) for s in rep.splitlines()) if m]


def main():
    global clock
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=1, help="numba + BLAS threads")
    ap.add_argument("--profile-steps", type=int, default=2, help="extra steps run under cProfile")
    ap.add_argument("--perf", type=int, default=0, metavar="N", help="also sample N steps with Linux perf")
    ap.add_argument("--clock", choices=("cpu", "wall"), help="cpu: process CPU time (default with 1 thread); "
                    "wall: perf_counter (default otherwise)")
    ap.add_argument("--json", type=pathlib.Path, help="also write the numbers to this file")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="change a config field of the preset (with_fields), e.g. --set 'box_conv_layers=[64,64]'")
    args = ap.parse_args()
    args.clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    from bench.bench_train_step import batches
    from bench.common import machine_report
    from mrcnn_np.autodiff.optim import SGD
    from mrcnn_np.detection.config import preset, with_fields
    from mrcnn_np.detection.mask_rcnn import MaskRCNN
    from mrcnn_np.memory import keep_freed_memory
    from mrcnn_np.threads import set_num_threads

    set_num_threads(args.threads)
    keep_freed_memory()           # as the training processes run (mrcnn_np.memory)
    print(machine_report())
    changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    model = MaskRCNN(with_fields(preset("teaching"), **changes), seed=0)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    prof = StepProfiler()
    total_loss = instrument(model, prof)
    data = batches(3 + args.steps + max(args.profile_steps, args.perf))
    extra = data[3 + args.steps:]

    def plain_step(imgs, tgts):
        loss = total_loss(model(imgs, tgts))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def profiled_step(imgs, tgts):
        prof.reset()
        prof.enabled, t0 = True, clock()
        out = model(imgs, tgts)
        loss = total_loss(out)
        t_fwd, prof.enabled = clock() - t0 - prof.overhead, False
        t0 = clock()
        opt.zero_grad()
        t_zero = clock() - t0
        prof.wrap_backward(loss)                    # not timed
        t0 = clock()
        loss.backward()
        t_bwd, t0 = clock() - t0, clock()
        opt.step()
        rec = {"forward": t_fwd, "backward": t_bwd, "optimizer": t_zero + clock() - t0,
               "bookkeeping": t_bwd - sum(prof.bwd.values()), "tagging": prof.overhead}
        rec["step"] = rec["forward"] + rec["backward"] + rec["optimizer"]
        rec.update({f"{c}.fwd": prof.fwd[c] for c in COMPONENTS} | {f"{c}.bwd": prof.bwd[c] for c in COMPONENTS})
        rec["rows"] = sum(prof.fwd.values()) + sum(prof.bwd.values()) + rec["bookkeeping"] + rec["optimizer"]
        return rec, out["num_pos_rois"]

    for imgs, tgts in data[:3]:                     # warm-up: numba compiles, allocator settles
        plain_step(imgs, tgts)
    recs, plain, npos = [], [], []
    for imgs, tgts in data[3:3 + args.steps]:
        rng_state = model.sampling_rng.bit_generator.state
        rec, n = profiled_step(imgs, tgts)
        model.sampling_rng.bit_generator.state = rng_state     # the plain step draws the same RoIs
        t0 = clock()
        plain_step(imgs, tgts)
        plain.append(clock() - t0)
        recs.append(rec)
        npos.append(n)
    med = {k: 1000 * statistics.median(r[k] for r in recs) for k in recs[0]}
    plain_ms = 1000 * statistics.median(plain)
    devs = [r["rows"] / p - 1 for r, p in zip(recs, plain)]
    py = python_overhead(plain_step, extra[:args.profile_steps]) if args.profile_steps else None
    dsos = perf_breakdown(plain_step, extra[:args.perf]) if args.perf else None

    step, dev = med["step"], statistics.median(devs)
    print(f"\nteaching preset, batch 4 x 128 x 128, forward + backward + SGD, {args.threads} thread(s), "
          f"{'process CPU' if args.clock == 'cpu' else 'wall'} time, median of {args.steps} steps\n")
    print(f"{'component':<12} {'forward ms':>10} {'%':>5}  {'backward ms':>11} {'%':>5}  {'total ms':>8} {'%':>5}")
    rows = [(c, med[f"{c}.fwd"], med[f"{c}.bwd"], NOTES.get(c, "")) for c in COMPONENTS]
    rows += [("bookkeeping", 0.0, med["bookkeeping"], "backward(): topological sort, grad accumulation"),
             ("optimizer", med["optimizer"], 0.0, "zero_grad + SGD step")]
    rows += [("sum of rows", sum(r[1] for r in rows), sum(r[2] for r in rows), "(medians need not add up)")]
    for name, f, b, note in rows:
        print(f"{name:<12} {f:10.1f} {100 * f / step:5.1f}  {b:11.1f} {100 * b / step:5.1f}  "
              f"{f + b:8.1f} {100 * (f + b) / step:5.1f}  {note}")
    print(f"\nstep (instrumented): {step:.1f} ms (forward {med['forward']:.1f}, backward {med['backward']:.1f}, "
          f"optimizer {med['optimizer']:.1f}); tagging the graph took another {med['tagging']:.1f} ms, left out")
    print(f"plain step:          {plain_ms:.1f} ms; positive RoIs per batch {min(npos)}..{max(npos)}")
    print(f"check: per step, the rows add up to {100 * dev:+.1f} % (median; range {100 * min(devs):+.1f}.."
          f"{100 * max(devs):+.1f} %) of the plain step on the same batch -> "
          f"{'OK' if abs(dev) <= 0.10 else 'OFF'} (within 10 %)")
    if py:
        print(f"\nPython overhead, cProfile on {args.profile_steps} other steps ({py['profiled_step_ms']:.0f} ms/step "
              f"under the profiler): {100 * py['python_fraction']:.0f} % is tottime of Python-level functions\n"
              f"(~{py['python_fraction'] * plain_ms:.0f} ms of the plain step), numba kernels "
              f"{100 * py['numba_fraction']:.0f} %, the rest C entries. An upper bound: cProfile inflates Python\n"
              "calls with its hooks and books NumPy operators and ufuncs called inline (a @ b, np.matmul, a + b)\n"
              "to the calling function, so BLAS time shows up as Python; --perf N measures the interpreter's share.")
        print("top 15 functions by tottime (ms per step, under cProfile):")
        for t in py["top"]:
            print(f"  {t['tottime_ms_per_step']:7.1f} {t['ncalls']:6d} calls  {t['kind']:<6}  {t['function']}")
    if dsos:
        print(f"\nperf on {args.perf} other steps: share of CPU samples by shared object")
        for pct, dso in dsos[:8]:
            print(f"  {pct:5.1f} %  {dso[:50]:<50}  {next((n for k, n in DSO_NOTES if k in dso.lower()), '')}")
    if args.json:
        out = {"preset": "teaching", "batch": [4, 3, 128, 128], "steps": args.steps, "threads": args.threads,
               "clock": args.clock, "median_ms": med, "plain_step_ms": plain_ms, "num_pos_rois": npos,
               "rows_vs_plain": devs, "per_step_ms": [{k: 1000 * v for k, v in r.items()} for r in recs],
               "cprofile": py, "perf_dso_percent": dsos}
        args.json.write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
