"""Data-parallel training: ``train.nproc_per_node`` processes on one machine under torch.distributed.

``launch`` starts the processes with torch's own elastic launcher (the engine behind
``torchrun``), so the caller stays one command and one MLflow run; each process runs
``fit`` as a replica (DDP: NCCL on CUDA, gloo on the CPU). Every replica draws the
same epoch order, augmentation and CutMix from the same seeds, and keeps its slice of
each batch (training.batches), so the random state of rank 0 is the whole training's:
rank 0 alone checkpoints, validates, reports epochs and returns the weights, and a
checkpoint resumes under any number of processes. Torch and numpy only.

How a training ends when something goes wrong:

- Ctrl-C / SIGTERM of the launching process: the replicas are stopped, then the signal goes to
  the handler that was in place before the launch (the Kedro run's: MLflow run KILLED), exactly
  as in a single-process training. torch's launcher would otherwise raise its own SignalException.
- A replica frozen (SIGSTOP, a hung machine): each replica stamps a shared heartbeat every
  ``HEARTBEAT_S`` from a thread of its own, which goes on while the training waits in a
  collective; one silent for ``FROZEN_AFTER_S`` is killed and the training fails with a
  RunError saying so. Without it the others would wait in gloo's collective timeout (30 min).
- A replica killed (kill -9, the out-of-memory killer): a RunError naming it, not the
  "Connection reset by peer" that the surviving replicas see.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import logging.handlers
import math
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from classwise.core.config import block_name
from classwise.core.errors import ConfigError
from classwise.core.errors import RunError


if TYPE_CHECKING:  # training.config imports this module for check_data_parallel
    from classwise.training.config import TrainConfig

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # how often each replica stamps its heartbeat
# A replica silent this long is taken for frozen. Its heartbeat thread needs the GIL for microseconds a
# second: the oldest heartbeat of healthy replicas measured on a loaded 2-core CPU was 1.2 s old (1.6 s
# with four busy processes beside them), so 30 s leaves room for a driver or a large save holding the GIL
# for seconds. A replica waiting in a collective keeps stamping: only a whole stopped process goes silent.
FROZEN_AFTER_S = 30.0
_WATCH_S = 1.0  # how often the launcher looks at the heartbeats


@dataclass(frozen=True)
class Replica:
    """This process's place in a data-parallel training."""

    rank: int  # 0 .. world - 1; rank 0 checkpoints, validates and reports
    world: int  # processes in the training
    local_rank: int  # index on this machine: the GPU it uses

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The replica's own GPU on CUDA (cuda:<local rank>); the CPU is shared."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" else device

    def sum_epoch(self, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> tuple[torch.Tensor,
                                                                                           torch.Tensor, int]:
        """An epoch's training loss sum, correct count and images seen, summed over all replicas."""
        totals = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=loss_sum.device)])
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        return totals[0], totals[1], int(totals[2].item())

    def all_reduce(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` over all replicas, in place."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


_current: Replica | None = None


def current() -> Replica | None:
    """The replica this process is, inside ``launch``'s workers; None in a plain training."""
    return _current


def is_main() -> bool:
    """True in a plain training and in rank 0 of a data-parallel one."""
    return _current is None or _current.is_main


def check_data_parallel(cfg: TrainConfig) -> None:
    """Refuse a ``train`` block that cannot be split over ``nproc_per_node`` processes."""
    n, block = cfg.nproc_per_node, block_name("train")
    if cfg.batch_size % n or cfg.batch_size // n < 2:
        raise ConfigError(
            f"Parameter '{block}.batch_size' is {cfg.batch_size}, which does not split into {n} equal slices of 2 "
            f"images or more ({block}.nproc_per_node = {n}); set it to a multiple of {n} of at least {2 * n}."
        )
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(
            f"Parameter '{block}.device' is {cfg.device!r}, but {block}.nproc_per_node = {n} gives each process a GPU "
            f"of its own; set {block}.device to 'auto', 'cuda' or 'cpu' (and CUDA_VISIBLE_DEVICES to choose GPUs)."
        )


def replicate(model: nn.Module, device: torch.device, sync_batchnorm: bool) -> nn.Module:
    """``model`` under DistributedDataParallel: gradients averaged over the replicas every step.

    With ``sync_batchnorm`` (CUDA) BatchNorm normalises with the statistics of the whole
    global batch; otherwise each replica uses its own slice, and rank 0's running
    statistics are broadcast to the others before every forward pass (DDP's default).
    """
    if sync_batchnorm and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif sync_batchnorm:
        log.info("train.sync_batchnorm applies on CUDA only (gloo has no SyncBatchNorm): each CPU process "
                 "normalises with its own slice of the batch.")
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this worker when the launching process dies (kill -9 included), so that an
    orphan never keeps training or holding the checkpoint lock."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os._exit(1)


class _SimpleQueueHandler(logging.handlers.QueueHandler):
    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # a multiprocessing SimpleQueue has put() only


def _log_to_launcher(events: Any, levels: dict[str, int], rank: int) -> None:
    """Send this replica's log records to the launching process, which shows them as its own."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_SimpleQueueHandler(events))
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level if rank == 0 else max(level, logging.WARNING))


def _heartbeat(beats: Any, rank: int, stop: threading.Event) -> None:
    while True:
        beats[rank] = time.monotonic()  # one clock for every process on Linux
        if stop.wait(HEARTBEAT_S):
            return


def _worker(fit: Callable[..., Any], args: tuple, kwargs: dict[str, Any], events: Any, parent_pid: int,
            threads: int, levels: dict[str, int], beats: Any, pids: Any) -> Any:
    """One replica: join the process group, train, and hand rank 0's result back."""
    global _current
    _die_with_parent(parent_pid)
    # Ctrl-C in a terminal reaches the replicas too: they end at once and quietly (no KeyboardInterrupt
    # traceback each); the launcher decides what the run becomes.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    pids[rank] = os.getpid()
    stop = threading.Event()
    beating = threading.Thread(target=_heartbeat, args=(beats, rank, stop), daemon=True)
    beating.start()
    try:
        torch.set_num_threads(threads)
        _log_to_launcher(events, levels, rank)  # one voice: rank 0 logs; the others only warn
        cuda = torch.cuda.is_available() and kwargs["cfg"].device != "cpu"
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
        _current = Replica(rank, world, local_rank)
        try:
            result = fit(*args, **kwargs, on_epoch_end=events.put if rank == 0 else None)
        except BaseException as exc:
            try:  # the launcher re-raises it as it was raised here
                events.put(("error", rank, exc))
            except Exception:  # not picklable: the launcher reports the replica's failure instead
                pass
            raise
        # Wait for every replica, then return without destroy_process_group(): tearing the group down at
        # exit aborted some gloo runs ("terminate called without an active exception").
        dist.barrier()
        return result if rank == 0 else None
    finally:
        # Left through Python, with a result or an error: never taken for frozen, nor for killed.
        stop.set()
        beating.join()
        beats[rank] = math.inf


def _forward_events(events: Any, on_epoch_end: Callable[[dict[str, float]], None] | None,
                    errors: list[BaseException], stop: threading.Event) -> None:
    """Pass rank 0's epoch rows to ``on_epoch_end`` as they come; log the replicas' records here; collect
    their errors; once ``stop`` is set, drain what is left and return.

    Stopped by an event rather than a last message: a replica killed while it held the queue's
    lock would block that message for ever.
    """
    while True:
        if events.empty():
            if stop.is_set():
                return
            stop.wait(0.05)
            continue
        event = events.get()
        if isinstance(event, logging.LogRecord):
            logging.getLogger(event.name).handle(event)
        elif isinstance(event, tuple):
            errors.append(event[2])
        elif on_epoch_end is not None:
            try:
                on_epoch_end(event)
            except Exception:  # a reporting failure must not stop the training
                log.exception("Reporting epoch %s failed.", event.get("epoch"))


_LAUNCHER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)  # what torch's launcher catches


def _watch(beats: Any, pids: Any, stop: threading.Event, frozen: list[RunError], frozen_after_s: float) -> None:
    """Kill a replica whose heartbeat stopped ``frozen_after_s`` ago, so that the others fail at once instead
    of waiting for it in a collective; what happened goes to ``frozen``."""
    while not stop.wait(_WATCH_S):
        now = time.monotonic()
        for rank, beat in enumerate(beats):
            if 0 < beat < math.inf and now - beat > frozen_after_s:
                frozen.append(RunError(
                    f"Replica rank {rank} (process {pids[rank]}) of the data-parallel training gave no sign of life "
                    f"for {frozen_after_s:.0f} s (stopped with SIGSTOP, or its machine hung), so the training was "
                    f"stopped; run it again to resume from the last checkpoint."
                ))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pids[rank], signal.SIGKILL)  # SIGKILL ends a stopped process too; SIGTERM would wait
                return


def _lost_peer(exc: BaseException) -> bool:
    """An error a replica sees only because another replica died (gloo's "Connection reset by peer")."""
    return isinstance(exc, dist.DistError) or "gloo" in str(exc)


def _root_cause(failed: Any, errors: list[BaseException], frozen: list[RunError], beats: Any,
                pids: Any) -> BaseException:
    """Why a data-parallel training failed: a frozen replica, else an error of a replica's own, else a replica
    killed by a signal, else the first error reported; torch's ChildFailedError when nothing says more."""
    if frozen:
        return frozen[0]
    own = [e for e in errors if not _lost_peer(e)]
    if own:
        return own[0]
    # A replica that left _worker through Python set its beat to inf; one still between 0 and inf was killed.
    killed = [rank for rank, beat in enumerate(beats) if 0 < beat < math.inf]
    if killed:
        # torch records the first replica it saw end; one ended by a signal before any other is the one killed.
        by_signal = {f.local_rank: f.signal_name() for f in failed.failures.values() if f.exitcode < 0}
        rank = next((r for r in killed if r in by_signal), killed[0])
        return RunError(
            f"Replica rank {rank} (process {pids[rank]}) of the data-parallel training was killed by "
            f"{by_signal.get(rank, 'a signal')}, so the training stopped; if nobody killed it, the kernel's "
            f"out-of-memory killer may have (see dmesg), and running it again resumes from the last checkpoint."
        )
    return errors[0] if errors else failed


@contextlib.contextmanager
def _launcher_logs_quiet() -> Any:
    """torch's launcher logs every failure and shutdown with a traceback of its own; ``launch`` says what
    happened in one sentence instead."""
    loggers = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)
               if name.startswith(("torch.distributed.elastic", "torch.multiprocessing"))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def launch(fit: Callable[..., Any], nproc: int, args: tuple, kwargs: dict[str, Any],
           on_epoch_end: Callable[[dict[str, float]], None] | None) -> Any:
    """Run ``fit(*args, **kwargs)`` in ``nproc`` processes of one data-parallel training; return rank 0's result.

    ``on_epoch_end`` runs in this process, on a thread of its own, as rank 0 finishes each
    epoch. An error in a replica is raised here as it was raised there; a frozen or killed
    replica is a RunError; SIGINT or SIGTERM stop the replicas and then reach the handler that
    was in place before the launch (module docstring).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if kwargs["cfg"].device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() < nproc:
        raise RunError(
            f"Parameter 'train.nproc_per_node' is {nproc}, but only {torch.cuda.device_count()} CUDA GPU(s) are "
            f"visible; set it to at most {torch.cuda.device_count()}, or train.device to 'cpu'."
        )
    # torch's launcher replaces these handlers to stop the replicas and leaves its own behind; a signal this
    # process ignores (nohup's SIGHUP) stays ignored.
    caught = [s for s in _LAUNCHER_SIGNALS if signal.getsignal(s) not in (signal.SIG_IGN, None)]
    handlers = {s: signal.getsignal(s) for s in caught}
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"classwise-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0",  # torchrun --standalone: a store on a free local port
        max_restarts=0,  # a failed replica fails the training; resume comes from the checkpoint
        monitor_interval=0.5, start_method="spawn", signals_to_handle=",".join(s.name for s in caught),
    )
    spawn = mp.get_context("spawn")
    # Heartbeats (time.monotonic(); inf once a replica leaves through Python) and pids, without locks: a
    # replica frozen or killed while holding a lock would block everyone else.
    events, beats, pids = spawn.SimpleQueue(), spawn.RawArray("d", nproc), spawn.RawArray("q", nproc)
    errors: list[BaseException] = []
    frozen: list[RunError] = []
    stop = threading.Event()
    helpers = [threading.Thread(target=_forward_events, args=(events, on_epoch_end, errors, stop), daemon=True),
               threading.Thread(target=_watch, args=(beats, pids, stop, frozen, FROZEN_AFTER_S), daemon=True)]
    threads = max(1, torch.get_num_threads() // nproc)
    log.info("Data-parallel training in %d processes (%s, %d thread(s) each).", nproc,
             "NCCL" if torch.cuda.is_available() and kwargs["cfg"].device != "cpu" else "gloo", threads)
    levels = {name: logging.getLogger(name or None).getEffectiveLevel() for name in ("", "classwise")}
    stopped_by = None
    for helper in helpers:
        helper.start()
    try:
        with _launcher_logs_quiet():
            results = elastic_launch(config, _worker)(fit, args, kwargs, events, os.getpid(), threads, levels,
                                                      beats, pids)
    except SignalException as exc:  # the replicas are stopped by now
        stopped_by = exc.sigval
    except ChildFailedError as exc:
        stop.set()
        helpers[0].join(timeout=30)  # every error the replicas sent
        raise _root_cause(exc, errors, frozen, beats, pids) from None
    finally:
        stop.set()
        for helper in helpers:
            helper.join(timeout=30)
        if threading.current_thread() is threading.main_thread():
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    if stopped_by is not None:
        # Now the signal does what it would have done to a single-process training: the Kedro run's handler
        # raises RunInterrupted (MLflow run KILLED), Python's default for SIGINT raises KeyboardInterrupt,
        # SIGTERM's default ends the process.
        signal.raise_signal(stopped_by)
        raise KeyboardInterrupt(f"Data-parallel training stopped by {stopped_by.name}.")  # a handler that returned
    return results[0]
