"""Data-parallel training: ``train.nproc_per_node`` processes on one machine under torch.distributed.

``launch`` starts the processes with torch's own elastic launcher (the engine behind
``torchrun``), so the caller stays one command and one MLflow run; each process runs
``fit`` as a replica (DDP: NCCL on CUDA, gloo on the CPU). Every replica draws the
same epoch order, augmentation and CutMix from the same seeds, and keeps its slice of
each batch (training.batches), so the random state of rank 0 is the whole training's:
rank 0 alone checkpoints, validates, reports epochs and returns the weights, and a
checkpoint resumes under any number of processes. Torch and numpy only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import logging.handlers
import os
import signal
import sys
import threading
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

_DONE = "done"


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


def _worker(fit: Callable[..., Any], args: tuple, kwargs: dict[str, Any], events: Any, parent_pid: int,
            threads: int, levels: dict[str, int]) -> Any:
    """One replica: join the process group, train, and hand rank 0's result back."""
    global _current
    _die_with_parent(parent_pid)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
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


def _forward_events(events: Any, on_epoch_end: Callable[[dict[str, float]], None] | None,
                    errors: list[BaseException]) -> None:
    """Pass rank 0's epoch rows to ``on_epoch_end`` as they come; log the replicas' records here; collect
    their errors."""
    while (event := events.get()) != _DONE:
        if isinstance(event, logging.LogRecord):
            logging.getLogger(event.name).handle(event)
        elif isinstance(event, tuple):
            errors.append(event[2])
        elif on_epoch_end is not None:
            try:
                on_epoch_end(event)
            except Exception:  # a reporting failure must not stop the training
                log.exception("Reporting epoch %s failed.", event.get("epoch"))


def launch(fit: Callable[..., Any], nproc: int, args: tuple, kwargs: dict[str, Any],
           on_epoch_end: Callable[[dict[str, float]], None] | None) -> Any:
    """Run ``fit(*args, **kwargs)`` in ``nproc`` processes of one data-parallel training; return rank 0's result.

    ``on_epoch_end`` runs in this process, on a thread of its own, as rank 0 finishes each
    epoch. An error in a replica is raised here as it was raised there.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"classwise-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0",  # torchrun --standalone: a store on a free local port
        max_restarts=0,  # a failed replica fails the training; resume comes from the checkpoint
        monitor_interval=0.5, start_method="spawn",
    )
    events = mp.get_context("spawn").SimpleQueue()
    errors: list[BaseException] = []
    forwarder = threading.Thread(target=_forward_events, args=(events, on_epoch_end, errors), daemon=True)
    forwarder.start()
    if kwargs["cfg"].device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() < nproc:
        raise RunError(
            f"Parameter 'train.nproc_per_node' is {nproc}, but only {torch.cuda.device_count()} CUDA GPU(s) are "
            f"visible; set it to at most {torch.cuda.device_count()}, or train.device to 'cpu'."
        )
    threads = max(1, torch.get_num_threads() // nproc)
    log.info("Data-parallel training in %d processes (%s, %d thread(s) each).", nproc,
             "NCCL" if torch.cuda.is_available() and kwargs["cfg"].device != "cpu" else "gloo", threads)
    try:
        levels = {name: logging.getLogger(name or None).getEffectiveLevel() for name in ("", "classwise")}
        results = elastic_launch(config, _worker)(fit, args, kwargs, events, os.getpid(), threads, levels)
    except ChildFailedError:
        events.put(_DONE)
        forwarder.join(timeout=30)
        if errors:
            raise errors[0] from None
        raise
    events.put(_DONE)
    forwarder.join()
    return results[0]

