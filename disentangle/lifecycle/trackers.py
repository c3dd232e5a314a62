"""Experiment trackers: a run's hyperparameters, log rows, images and metrics where researchers
already look (TensorBoard, MLflow, Weights & Biases), besides the log.csv every run writes.

Registered like every pluggable kind (``@TRACKERS.register("name")``); a run names its trackers
in ``RunConfig.loggers`` (how it is watched, not what it is: not part of the run id). Each
tracker gets, through :class:`Trackers`:

- at start, the resolved config as hyperparameters;
- every log row (loss terms, KL per latent, images/s, scheduled weights) at its step;
- reconstructions and traversals as images at every checkpoint and at the end;
- the metrics after ``evaluate``.

Every tracker is probed before the first step: :meth:`Tracker.check` (package, URI, credentials)
when a config is checked, :meth:`Tracker.prepare` (the store created once and writable) when a
run or grid is prepared, before any worker starts. A tracker failing mid-run is a one-line
warning and is off for the rest of that run: it never fails or stops the training (log.csv is
the record).

A resumed run continues the same tracker run: its id is kept in ``trackers.json`` in the run
folder, with the last step each tracker holds, so no step is logged twice (the rows a killed
run logged after its last checkpoint are recomputed bit for bit on resume and not sent again;
only their ``images_per_s`` timing differs from log.csv's).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import uuid
from pathlib import Path

import numpy as np

from disentangle.base.files import atomic_write_json
from disentangle.base.errors import DisentangleError
from disentangle.base.registry import Registry

STATE = "trackers.json"
TRACKERS = Registry("logger")


class Tracker:
    """One tracker run; subclasses send to their tool. ``package`` is the module it needs and
    ``extra`` the pip extra that installs it."""

    package = ""
    extra = ""
    built_in = False  # True: what the run writes itself (log.csv); naming the tracker opens nothing

    def __init__(self, run_dir: Path, name: str, params: dict, state: dict, uri: str | None = None):
        self.run_dir, self.state = run_dir, state

    @classmethod
    def check(cls, uri: str | None) -> None:
        """A one-line error when the tracker cannot work here (package missing, store unreachable)."""
        if cls.package and importlib.util.find_spec(cls.package) is None:
            raise DisentangleError(f"logger {cls.name!r} needs the {cls.package} package: pip install -e \".[{cls.extra}]\"")

    @classmethod
    def prepare(cls, uri: str | None, runs_dir: Path) -> None:
        """Make the tracker's store ready for every run of ``runs_dir`` (once, before any worker), or a
        one-line error when it cannot be created or written."""

    def scalars(self, values: dict, step: int) -> None:
        raise NotImplementedError

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        """``image`` float [H, W] or [H, W, 3] in [0, 1]."""

    def close(self) -> None:
        pass


@TRACKERS.register("csv")
class CsvTracker(Tracker):
    """log.csv, which every run writes anyway: naming it (``--logger csv``, a study's ``loggers = ["csv"]``)
    is accepted and opens nothing."""

    built_in = True

    def scalars(self, values, step):
        pass


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """Event files in ``<run>/tensorboard`` (torch's SummaryWriter): ``tensorboard --logdir runs``."""

    package, extra = "tensorboard", "tensorboard"

    def __init__(self, run_dir, name, params, state, uri=None):
        super().__init__(run_dir, name, params, state, uri)
        from torch.utils.tensorboard import SummaryWriter

        folder = run_dir / "tensorboard"
        _writable_folder(folder, "TensorBoard folder")  # its writer thread would otherwise fail with a traceback
        self.writer = SummaryWriter(str(folder))
        if not state.get("started"):
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(params.items())), 0)

    def scalars(self, values, step):
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def image(self, name, image, step):
        self.writer.add_image(name, image, step, dataformats="HWC" if image.ndim == 3 else "HW")
        self.writer.flush()

    def close(self):
        self.writer.close()


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """An MLflow run in experiment ``disentangle``; the store is the tracking URI (default: the SQLite
    file ``mlflow.db`` in the runs folder: ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``),
    images in ``mlruns`` beside a SQLite store."""

    package, extra = "mlflow", "mlflow"

    @staticmethod
    def default_uri(runs_dir: Path) -> str:
        return f"sqlite:///{Path(runs_dir).resolve() / 'mlflow.db'}"

    @staticmethod
    def artifact_location(uri: str) -> str | None:
        """Where a new experiment keeps its images: ``mlruns`` beside a local SQLite store (MLflow's own
        default is ``./mlruns`` in whatever folder the command ran from); a server or another store decides."""
        if uri.startswith("sqlite:///"):
            return (Path(uri[len("sqlite:///"):]).parent / "mlruns").resolve().as_uri()
        return None

    @classmethod
    def check(cls, uri):
        super().check(uri)
        if uri and "://" not in uri:
            raise DisentangleError(f"MLflow tracking URI {uri!r} names no scheme: give sqlite:///PATH/mlflow.db, file:///PATH "
                                   "or http(s)://HOST")
        if uri and uri.startswith(("http://", "https://")):
            import urllib.request

            try:
                urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
            except OSError as error:
                raise DisentangleError(f"MLflow tracking URI {uri} is unreachable ({getattr(error, 'reason', error)})") from None

    @classmethod
    def prepare(cls, uri, runs_dir):
        """The store and the ``disentangle`` experiment created once, under a lock, before any worker:
        workers creating a new SQLite store at once race on its tables."""
        uri = uri or cls.default_uri(runs_dir)
        local = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri[len("file://"):] if uri.startswith("file://") else None
        if local is not None:
            path = Path(local)
            folder = path.parent if uri.startswith("sqlite:") else path
            _writable_folder(folder, f"MLflow store {uri}: folder")
            if path.is_file() and not os.access(path, os.W_OK):
                raise DisentangleError(f"MLflow store {uri} is read-only: give --tracking-uri a store you can write")
        from disentangle.base.files import exclusive_lock

        busy = DisentangleError(f"another process has been creating the MLflow store {uri} for 60 s: try again when it is done")
        try:
            with exclusive_lock(Path(runs_dir) / ".mlflow-store.lock", busy, attempts=1200):
                client = _mlflow_client(uri)
                if client.get_experiment_by_name("disentangle") is None:
                    client.create_experiment("disentangle", artifact_location=cls.artifact_location(uri))
        except DisentangleError:
            raise
        except Exception as error:  # MLflow and SQLAlchemy raise many kinds
            raise DisentangleError(f"MLflow store {uri} could not be created ({type(error).__name__}: {_first_line(error)})") from None

    def __init__(self, run_dir, name, params, state, uri=None):
        super().__init__(run_dir, name, params, state, uri)
        uri = uri or self.default_uri(run_dir.parent)
        self.client = _mlflow_client(uri)
        if "run_id" not in state:
            experiment = self.client.get_experiment_by_name("disentangle")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
                "disentangle", artifact_location=self.artifact_location(uri))
            run = self.client.create_run(experiment_id, run_name=name)
            state["run_id"] = run.info.run_id
            from mlflow.entities import Param

            self.client.log_batch(state["run_id"], params=[Param(k, str(v)[:500]) for k, v in sorted(params.items())])
        else:
            self.client.update_run(state["run_id"], status="RUNNING")

    def scalars(self, values, step):
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.state["run_id"], metrics=[Metric(_mlflow_key(k), float(v), now, step) for k, v in values.items()])

    def image(self, name, image, step):
        self.client.log_image(self.state["run_id"], image, key=name, step=step)

    def close(self):
        self.client.update_run(self.state["run_id"], status="FINISHED")


def _mlflow_client(uri: str):
    import logging

    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its table-creation notices on every run
    return MlflowClient(tracking_uri=uri)


def _mlflow_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)  # "dci.10:mean" -> "dci.10_mean"


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """A Weights & Biases run in project ``disentangle`` (offline with ``WANDB_MODE=offline``; files in
    ``<run>/wandb``), resumed under the same id."""

    package, extra = "wandb", "wandb"

    @classmethod
    def check(cls, uri):
        super().check(uri)
        if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
            return
        import netrc

        try:
            if netrc.netrc().authenticators("api.wandb.ai"):
                return  # `wandb login` keeps the key there
        except (OSError, netrc.NetrcParseError):
            pass
        raise DisentangleError("logger 'wandb' has no API key: set WANDB_API_KEY (or run `wandb login`), or WANDB_MODE=offline to log locally")

    def __init__(self, run_dir, name, params, state, uri=None):
        super().__init__(run_dir, name, params, state, uri)
        import wandb

        state.setdefault("run_id", uuid.uuid4().hex[:12])  # unique per tracker run, kept for resumes
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "disentangle"), name=name, id=state["run_id"], resume="allow",
                              dir=str(run_dir), config=params, reinit="create_new")

    def scalars(self, values, step):
        self.run.log(dict(values), step=step)

    def image(self, name, image, step):
        import wandb

        self.run.log({name: wandb.Image(image)}, step=step)

    def close(self):
        self.run.finish()


def check_loggers(names, uri: str | None = None) -> tuple[str, ...]:
    """The named trackers, checked (known, installed, reachable) before anything trains."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise DisentangleError(f"loggers must be a list of names from {', '.join(TRACKERS.names())}, got {names!r}")
    for name in names:
        _check_one(name, uri)
    return tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=None)
def _check_one(name: str, uri: str | None) -> None:  # once per process: a grid checks every run's config
    TRACKERS.get(name).check(uri)


def prepare_trackers(configs, runs_dir: Path) -> None:
    """Each distinct (tracker, URI) of ``configs`` made ready once (:meth:`Tracker.prepare`), before any
    run trains; a tracking URI given without the mlflow logger is a warning (nothing would use it)."""
    import warnings

    seen = set()
    for config in configs:
        if config.tracking_uri and "mlflow" not in config.loggers:
            warnings.warn(f"--tracking-uri {config.tracking_uri} is used by the mlflow logger only, which is not on: "
                          "add --logger mlflow", stacklevel=2)
        for name in config.loggers:
            if (name, config.tracking_uri) not in seen:
                seen.add((name, config.tracking_uri))
                TRACKERS.get(name).prepare(config.tracking_uri, Path(runs_dir))


def _writable_folder(folder: Path, what: str) -> None:
    """``folder`` created if missing, or a one-line error when it cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DisentangleError(f"{what} {folder} cannot be created ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DisentangleError(f"{what} {folder} is not writable")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


class Trackers:
    """The trackers of one run (none: every call does nothing), with the step each already holds."""

    def __init__(self, run_dir: Path, names, params: dict, uri: str | None = None):
        self.run_dir = Path(run_dir)
        self.saved = _read_state(self.run_dir)
        self.open = {}
        for name in names:
            if TRACKERS.get(name).built_in:  # written by the run itself (log.csv)
                continue
            state = self.saved.setdefault(name, {})
            self.open[name] = TRACKERS.get(name)(self.run_dir, self.run_dir.name, params, state, uri)
            state["started"] = True
        self._save()

    def row(self, row: dict) -> None:
        """A log.csv row at ``row["step"]``, sent to each tracker that does not hold that step yet."""
        step = int(row["step"])
        values = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}
        self._send(step, lambda tracker: tracker.scalars(values, step))

    def images(self, images: dict[str, np.ndarray], step: int) -> None:
        for name, tracker in list(self.open.items()):
            self._guarded(name, step, lambda: [tracker.image(key, image, step) for key, image in images.items()])

    def metrics(self, values: dict, step: int) -> None:
        """Evaluation results (``metric.key`` -> number) at the run's last step (sent every time: a new evaluation)."""
        numbers = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and np.isfinite(v)}
        for name, tracker in list(self.open.items()):
            self._guarded(name, step, lambda: tracker.scalars(numbers, step))

    def _send(self, step: int, send) -> None:
        for name, tracker in list(self.open.items()):
            if step <= self.saved[name].get("last_step", -1):
                continue  # logged before a kill: the resumed run recomputed the same values
            if self._guarded(name, step, lambda: send(tracker)):
                self.saved[name]["last_step"] = step
        self._save()

    def _guarded(self, name: str, step: int, call) -> bool:
        """Run ``call``; a failure is a one-line warning and turns this tracker off for the rest of the run."""
        import warnings

        try:
            call()
            return True
        except Exception as error:  # a tracker's own failure (network, disk, its server) never stops the training
            warnings.warn(f"logger {name!r} failed at step {step} ({type(error).__name__}: {_first_line(error)}); it is off for the "
                          "rest of this run (log.csv has every row)", stacklevel=3)
            self.open.pop(name, None)
            return False

    def close(self) -> None:
        for name, tracker in list(self.open.items()):
            self._guarded(name, -1, tracker.close)
        self.open = {}

    def _save(self) -> None:
        if self.open:
            atomic_write_json(self.run_dir / STATE, self.saved)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_state(run_dir: Path) -> dict:
    import json

    try:
        return json.loads((run_dir / STATE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def run_params(config, resolved_model_options: dict) -> dict:
    """The hyperparameters a tracker shows: the run's identity, flattened, with every model option."""
    identity = config.identity()
    params = {k: v for k, v in identity.items() if k not in ("model_options", "dataset_options")}
    params.update({f"model.{k}": v for k, v in resolved_model_options.items() if k not in ("observation_shape",)})
    params.update({f"data.{k}": v for k, v in identity["dataset_options"].items()})
    return params
