"""Feature extraction on Ray Data: a file listing → ``map_batches`` over an actor pool → Parquet shards.

Each actor builds the network once (the run's model and ``Extractor.from_run``, as the local engine does, which
applies the gray mode and wraps the backbone in ``FeatureNet``) and then, batch after batch, runs exactly the local
engine's code: ``file_hash``, ``_Decode`` (decode, resize, crop, scale), ``_collate`` and the runtime's runner.
Same preprocessing and same weights give the same numbers as ``--engine local``.

The listing (paths, labels, splits) is made on the driver; the images are read by the actors, so on a
multi-node cluster the paths must be visible on every node (a shared file system), and ``--out`` must be a
shared folder or an object-store URI that pyarrow understands (``s3://…``, ``gs://…``).

Fault tolerance is Ray's: Ray Data creates pool actors with ``max_restarts=-1`` and ``max_task_retries=-1``, so a batch
whose actor dies is recomputed on a restarted actor, and its output is produced once; Ray Data's Parquet
writer names files per write task, so a retried write replaces its own file. After the run the engine checks
that the store holds every listed image exactly once.

Ray's own logging (Ray core and Ray Data, whose DEBUG lines dump operator metrics on every scheduling step) is
kept at WARNING; ``TRANSFERLAB_RAY_LOG=info`` (or debug, error) asks for another level.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from transferlab.config import RunConfig
from transferlab.data.datasets import ImageDataset
from transferlab.engines.base import Engine, EngineRun, refuse_strict
from transferlab.extras import require
from transferlab.features.extractor import Extractor, _collate, _Decode, file_hash
from transferlab.features.store import FeatureStore, build_metadata, dataset_rows, make_table, store_schema
from transferlab.models.builder import load_run_model

RAY_LOG_ENV = "TRANSFERLAB_RAY_LOG"


def ray_log_level() -> int:
    """The level for Ray's loggers: WARNING unless ``$TRANSFERLAB_RAY_LOG`` names another (debug, info, error)."""
    name = os.environ.get(RAY_LOG_ENV) or "warning"
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"{RAY_LOG_ENV}={name!r} is not a log level; use debug, info, warning or error")
    return level


def quiet_ray_logging() -> int:
    """Set Ray core's and Ray Data's loggers here, and Ray Data's in the workers a local Ray starts from here
    (``RAY_DATA_LOG_LEVEL``, unless already set), to :func:`ray_log_level`; returns the level."""
    level = ray_log_level()
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", logging.getLevelName(level))
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(level)
    return level


def bad_path_reason(path: str | Path, e: OSError) -> str:
    return "no such file" if not Path(path).exists() else f"unreadable ({e.strerror})"


class FeatureActor:
    """A Ray Data callable class: the network is built once per actor, then called on each batch of rows
    (index, path, label, class_name, split) and returns them with hash, error and the feature columns."""

    def __init__(self, cfg: RunConfig, outputs: list, dims: dict, fault_marker: str | None = None):
        self.ex = actor_extractor(cfg, outputs)
        self.run = self.ex.runner()
        self.outputs = self.ex.outputs
        self.dims = {tuple(k): v for k, v in dims.items()}
        self.schema = store_schema(self.outputs, self.dims)
        self.fault_marker = fault_marker
        self.calls = 0

    def _fault(self) -> None:
        """Test hook: the first actor to reach its first batch kills its own process (once per marker file)."""
        if self.fault_marker and self.calls == 0:
            try:
                fd = os.open(self.fault_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)

    def __call__(self, batch):
        self._fault()
        self.calls += 1
        paths = batch["path"].to_pylist()
        n = len(paths)
        hashes, errors = [""] * n, [""] * n
        for i, p in enumerate(paths):
            try:
                hashes[i] = file_hash(Path(p))
            except OSError as e:
                errors[i] = bad_path_reason(p, e)
        live = [i for i in range(n) if not errors[i]]
        decode = _Decode([Path(paths[i]) for i in live], self.ex.preprocess, self.ex.channels)
        idx, x, bad = _collate([decode[j] for j in range(len(decode))])
        for j, reason in bad:
            errors[live[j]] = reason
        feats = {o: np.zeros((n, self.dims[o]), dtype=np.float32) for o in self.outputs}
        if x is not None:
            rows = [live[j] for j in idx]
            for o, a in zip(self.outputs, self.run(x)):
                feats[o][rows] = a
        return make_table(self.schema, index=batch["index"].to_numpy(), paths=paths, hashes=hashes,
                          labels=batch["label"].to_numpy(), class_names=batch["class_name"].to_pylist(),
                          split=batch["split"].to_pylist(), errors=errors, features=feats, outputs=self.outputs)


def check_store(out: str, n: int) -> tuple[int, list[tuple[str, str]]]:
    """(rows, bad files) of the store at ``out``, which must hold listing indices 0..n-1 exactly once each."""
    store = FeatureStore(out)
    index = store.read(columns=["index"])["index"].to_numpy()
    if len(index) != n or not np.array_equal(np.sort(index), np.arange(n)):
        unique = len(np.unique(index))
        raise RuntimeError(f"{out}: {len(index)} rows for {n} images ({n - unique} missing, "
                           f"{len(index) - unique} duplicated); the store is not one row per image")
    return len(index), store.bad()


def _import_ray():
    """Ray with Ray Data (and what Ray Data imports: pyarrow, pandas), or one line naming the extra."""
    for module in ("ray", "ray.data", "pyarrow", "pandas"):
        require(module, "--engine ray")
    return require("ray", "--engine ray")


def actor_extractor(cfg: RunConfig, outputs) -> Extractor:
    """The extractor an actor (and the driver) builds from the run's settings: it never extracts, so no cache."""
    return Extractor.from_run(cfg, load_run_model(cfg), [tuple(o) for o in outputs], workers=0, cache=None,
                              progress=False)


class RayEngine(Engine):
    """Extraction by Ray Data actors. ``address``: None starts a local Ray instance (unless this process is already
    connected to one); ``auto`` or ``ray://host:10001`` joins an existing cluster. ``concurrency``: actors (default:
    one per GPU with ``device='cuda'``, else cluster CPUs / ``cpus_per_actor``). ``fault_marker``: test hook, see
    ``FeatureActor._fault``."""

    name = "ray"

    def __init__(self, address: str | None = None, concurrency: int | None = None, cpus_per_actor: float = 1.0,
                 rows_per_block: int | None = None, progress: bool = True, fault_marker: str | None = None):
        self.address, self.concurrency, self.cpus_per_actor = address, concurrency, cpus_per_actor
        self.rows_per_block, self.progress, self.fault_marker = rows_per_block, progress, fault_marker

    def extract(self, dataset: ImageDataset, out: str | Path, cfg: RunConfig, outputs, *, fmt: str = "parquet",
                rows_per_file: int | None = None) -> EngineRun:
        if fmt != "parquet":
            raise ValueError(f"--engine ray writes a Parquet store, not {fmt!r}: use --engine local for --format npz")
        if cfg.runtime == "int8":
            raise ValueError("--runtime int8 runs on the local engine, where its calibration set is chosen and the "
                             "graph quantized: use --engine local")
        ray = _import_ray()
        pa = require("pyarrow", "--engine ray")

        t0 = time.perf_counter()
        outputs = [tuple(o) for o in dict.fromkeys(tuple(o) for o in outputs)]
        ex = actor_extractor(replace(cfg, device="cpu"), outputs)  # validates layers; the driver needs no GPU
        dims = ex.output_dims()
        gpu = cfg.device.startswith("cuda")
        t_ready = time.perf_counter()
        level = quiet_ray_logging()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, logging_level=level)
        t_init = time.perf_counter()
        try:
            resources = ray.cluster_resources()
            concurrency = self.concurrency
            if concurrency is None:
                concurrency = (int(resources.get("GPU", 0)) if gpu
                               else int(resources.get("CPU", 1) // self.cpus_per_actor))
            if concurrency < 1:
                raise RuntimeError(f"the Ray cluster has no room for an actor ({resources}); "
                                   f"{'no GPU' if gpu else 'not enough CPUs'}")
            meta = build_metadata(ex.model, ex, dataset, dims, self.name, extra={"ray": {
                "address": self.address or "local", "concurrency": concurrency,
                "cpus_per_actor": self.cpus_per_actor, "num_gpus_per_actor": 1 if gpu else 0, "device": cfg.device,
                "batch_size": ex.batch_size, "ray_version": ray.__version__}})
            schema = store_schema(outputs, dims, meta)
            rows = dataset_rows(dataset)
            n = len(rows["path"])
            if n == 0:
                raise ValueError("no images to extract")
            # Blocks are the unit of scheduling and of retry: whole batches each (the last one excepted), at least
            # two per actor so that every actor has work, at most 8 batches so that a retry redoes little.
            bs = ex.batch_size
            per_block = self.rows_per_block or bs * min(8, max(1, math.ceil(n / (2 * concurrency * bs))))
            listing = pa.table({"index": pa.array(rows["index"], pa.int64()),
                                "path": pa.array(rows["path"], pa.string()),
                                "label": pa.array(rows["label"], pa.int32()),
                                "class_name": pa.array(rows["class_name"], pa.string()),
                                "split": pa.array(rows["split"], pa.string())})
            ray.data.DataContext.get_current().enable_progress_bars = self.progress
            ds = ray.data.from_arrow([listing.slice(i, per_block) for i in range(0, n, per_block)])
            ds = ds.map_batches(
                FeatureActor,
                fn_constructor_kwargs={"cfg": cfg, "outputs": outputs, "dims": dims, "fault_marker": self.fault_marker},
                batch_size=bs, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=self.cpus_per_actor,
                num_gpus=1 if gpu else None)
            # Ray Data creates pool actors with max_restarts=-1 and max_task_retries=-1 (its default; passing them
            # here is deprecated since Ray 2.60): a dead actor is restarted and its batch retried.
            ds.write_parquet(str(out), schema=schema, min_rows_per_file=rows_per_file)
            t_done = time.perf_counter()
            stored, bad = n, []
            if "://" not in str(out):  # a folder: check that it holds every image exactly once
                if Path(out).is_dir():
                    stored, bad = check_store(str(out), n)
                else:  # not visible here (Ray Client from another machine): check it on the cluster
                    stored, bad = ray.get(ray.remote(num_cpus=0)(check_store).remote(str(out), n))
        finally:
            if started:
                ray.shutdown()
        pipeline = t_done - t_init
        run = EngineRun(self.name, str(out), stored, bad, time.perf_counter() - t0,
                        (stored - len(bad)) / pipeline if pipeline else 0.0,
                        {"address": self.address or "local", "concurrency": concurrency,
                         "driver_seconds": round(t_ready - t0, 2), "init_seconds": round(t_init - t_ready, 2),
                         "pipeline_seconds": round(pipeline, 2)})
        return refuse_strict(run, cfg.strict)
