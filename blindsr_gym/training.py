"""What every trainer shares when it stops and resumes: the stored configuration, compared whole, and
the resume state, read with a clear error when it is damaged.

A resumed run must continue the run it resumes. Each trainer stores its whole configuration in its
resume state and, on ``--resume``, :func:`check_resume_config` compares it with the new one and names
every difference, except the keys of an explicit allow-list (a longer run, another device, paths that
differ between machines). Anything else (another renderer, metric, batch, crop size, seed) is refused:
a replay buffer or an optimiser state from one setting would silently train another.

It also holds what the trainers share beyond resume, so that no trainer imports another: the precision
choice (:func:`resolve_amp`), the optimiser (:func:`adam`), the hardware named in model cards
(:func:`hardware_string`), the exponential learning-rate decay (:func:`decayed`) and the loss kept on the
device between reads (:class:`DeviceLoss`).

A trainer decorated with :func:`stoppable` stops cleanly on Ctrl-C (SIGINT) or SIGTERM (``timeout``, a batch
scheduler, the end of a lease): it finishes the step under way, writes its resume state at that step and
returns with ``stopped_by`` naming the signal, so that ``--resume`` goes on from there instead of from the last
periodic checkpoint. A second signal acts at once, as it would without the trainer.
"""

from __future__ import annotations

import functools
import math
import platform
import signal
import sys
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

__all__ = ["ResumeError", "Run", "config_differences", "check_resume_config", "load_state", "resolve_amp",
           "adam", "hardware_string", "decayed", "multistep", "DeviceLoss", "stoppable", "stop_on_signals",
           "stop_requested", "exit_status", "report_stop"]

#: Keys any trainer's resume may change: where things are and how often it reports; not what it learns.
#: (A data folder may sit elsewhere on another machine; its images must be the same.)
RESUME_ALLOWED = ("out", "logdir", "device", "threads", "data", "val_data", "ckpt_every", "val_every",
                  "eval_every", "log_every")


#: The signals a stoppable trainer turns into "checkpoint now and stop".
STOP_SIGNALS = ("SIGINT", "SIGTERM")
_WATCHES: list[dict] = []  # one entry per active stop_on_signals(), innermost last: {"signal": name or None}


@contextmanager
def stop_on_signals(signals: Iterable[str] = STOP_SIGNALS):
    """While inside, the first of ``signals`` is recorded (:func:`stop_requested` names it) instead of
    interrupting, and the previous handlers come back at once, so that a second signal acts as usual (Ctrl-C
    twice raises KeyboardInterrupt). A signal the process ignores (SIGINT under a non-interactive shell's
    ``cmd &``) stays ignored. Outside the main thread, where Python cannot set handlers, it does nothing.
    Yields the watch (``{"signal": None or the name}``)."""
    watch: dict = {"signal": None}
    previous: dict = {}  # signal -> the handler it had; empty outside the main thread

    def restore():
        for s, h in previous.items():
            if signal.getsignal(s) is handler:
                signal.signal(s, signal.SIG_DFL if h is None else h)  # None: a handler set outside Python

    def handler(signum, frame):
        watch["signal"] = signal.Signals(signum).name
        restore()
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        print(f"\n{watch['signal']}: stopping after this step and saving the run's resume state there "
              f"(--resume goes on from it); {again} again stops at once, losing the steps since the last "
              "checkpoint", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        for name in signals:
            s = getattr(signal, name)
            if signal.getsignal(s) is not signal.SIG_IGN:  # an ignored signal stays ignored (a shell's `cmd &`)
                previous[s] = signal.signal(s, handler)
    _WATCHES.append(watch)
    try:
        yield watch
    finally:
        _WATCHES.remove(watch)
        restore()


def stop_requested() -> str | None:
    """The signal the innermost :func:`stop_on_signals` received (``"SIGINT"``, ``"SIGTERM"``), or None."""
    return _WATCHES[-1]["signal"] if _WATCHES else None


def stoppable(fn):
    """Run the decorated trainer inside :func:`stop_on_signals`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with stop_on_signals():
            return fn(*args, **kwargs)

    return wrapper


def exit_status(stopped_by: str | None) -> int:
    """A command's exit status after its trainer returned: 0, or the shell's 128 + the signal's number when a
    signal stopped it (130 for Ctrl-C), so that scripts see the run did not finish."""
    return 128 + int(getattr(signal, stopped_by)) if stopped_by else 0


def report_stop(stopped_by: str | None, step: int, state_path: str | Path, unit: str = "step") -> None:
    """The line a command prints to stderr when a signal stopped its trainer."""
    if stopped_by:
        print(f"stopped by {stopped_by} at {unit} {step}; the resume state is {state_path}: the same command "
              "with --resume goes on from there", file=sys.stderr, flush=True)


class ResumeError(InputError):
    """A resume state that is damaged, or whose run differs from the one asked for."""


def config_differences(saved: dict, new: dict, allowed: Iterable[str] = (), prefix: str = "") -> list[str]:
    """``"key: saved -> new"`` for each differing key (dotted for nested dicts), except those in ``allowed``
    (dotted keys allow a nested key alone)."""
    allowed = set(allowed)
    out = []
    for key in sorted(set(saved) | set(new)):
        name = prefix + str(key)
        if name in allowed:
            continue
        a, b = saved.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, allowed, name + ".")
        elif _norm(a) != _norm(b):
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def _norm(v):
    return list(v) if isinstance(v, tuple) else v  # a tuple stored in a state comes back a list


def check_resume_config(saved: dict, new: dict, allowed: Iterable[str], path: str | Path, flag: str = "--out") -> None:
    """Raise :class:`ResumeError` naming every difference between the stored and the new configuration
    outside ``allowed`` (plus :data:`RESUME_ALLOWED`)."""
    diffs = config_differences(saved, new, (*RESUME_ALLOWED, *allowed))
    if diffs:
        raise ResumeError(f"--resume: {path} is a run with another setting ({'; '.join(diffs)}); resume it with "
                          f"its own settings, or start a new {flag} to change them (a resume may change only "
                          f"{', '.join(sorted({*allowed, *RESUME_ALLOWED}))})")


def load_state(path: str | Path) -> dict:
    """A trainer's resume state (``torch.save`` of tensors and plain data), or :class:`ResumeError` naming the
    file when it is missing, truncated or not one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip raises RuntimeError, a foreign pickle UnpicklingError, ...
        raise ResumeError(f"--resume: {path} is damaged or not a resume state ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); resume from an intact copy or start "
                          "a new run") from None
    if not isinstance(state, dict) or "config" not in state:
        raise ResumeError(f"--resume: {path} is not a blindsr-gym resume state (no stored configuration)")
    return state


def resolve_amp(amp: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where the hardware runs it fast (CUDA with bf16, CPUs with AMX/AVX-512 bf16),
    else ``"off"``; ``"bf16"`` and ``"off"`` pass through."""
    if amp not in ("auto", "bf16", "off"):
        raise InputError(f"amp must be 'auto', 'bf16' or 'off', got {amp!r}")
    if amp != "auto":
        return amp
    fast = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or \
        (device.type == "cpu" and torch.backends.mkldnn.is_available() and _cpu_has_bf16())
    return "bf16" if fast else "off"


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def adam(params, lr: float, device: str | torch.device) -> torch.optim.Adam:
    """The trainers' Adam: on CUDA the fused implementation (one kernel for every parameter's update instead
    of a dozen multi-tensor passes over them), elsewhere PyTorch's default. Both keep the same state, so a
    resume state moves between devices either way."""
    fused = torch.device(device).type == "cuda"
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None)


def hardware_string(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"{name} (CPU), {n} thread{'s' if n != 1 else ''}"


def decayed(lr0: float, frac_to: float, it: int, total: int, start: int = 0) -> float:
    """Exponential decay: ``lr0`` up to iteration ``start``, then down to ``lr0 * frac_to`` at ``total`` (and
    after). A function of the iteration alone, so a resumed run follows it."""
    done = min(max(it - start, 0), total - start)
    return lr0 * frac_to ** (done / max(total - start, 1))


def multistep(lr0: float, gamma: float, milestones, it: int) -> float:
    """Step decay: ``lr0 * gamma ** (number of milestones reached by iteration it)``."""
    return lr0 * gamma ** sum(it >= m for m in milestones)


class DeviceLoss:
    """The losses of the steps since the last read, summed on the device: reading a loss every step would make
    the host wait for the accelerator every step. :meth:`read` (one wait) returns their mean and raises if it
    is not finite, i.e. if any of those losses was not; a trainer reads it at its log steps and before every
    save, so weights updated with a non-finite loss are never written."""

    def __init__(self, device: torch.device, state_path: str | Path, step: int = 0):
        self.sum, self.n, self.step, self.state_path = torch.zeros((), device=device), 0, step, state_path

    def add(self, loss: torch.Tensor) -> None:
        self.sum += loss.detach().float()
        self.n += 1
        self.step += 1

    def read(self) -> float:
        """The mean loss since the last read (NaN when no step was added); raises FloatingPointError if it is
        not finite."""
        mean = float(self.sum) / self.n if self.n else float("nan")
        if self.n and not math.isfinite(mean):
            raise FloatingPointError(f"the loss is {mean} in steps {self.step - self.n + 1}-{self.step}; last good "
                                     f"checkpoint: {self.state_path}")
        self.sum.zero_()
        self.n = 0
        return mean


class Run:
    """A training run's folder and what every trainer does around its update step.

    ``Run(folder, state_name, config, allowed)`` refuses a new run where a resume state already is, and with
    ``resume=True`` loads that state (:attr:`state`, else None) after comparing its stored configuration with
    ``config`` (:func:`check_resume_config`, naming every difference outside ``allowed``). Then:

    * :meth:`save_state` writes the resume state atomically, with ``config`` in it;
    * :meth:`writer` is the TensorBoard writer, purged past ``step`` on resume (a killed run's later points go);
    * :meth:`progress` is the tqdm bar (the package's one progress-bar library), or None;
    * :meth:`tick` adds the time since the last tick to :attr:`wall`, and :meth:`restart_clock` leaves out
      what ran in between (evaluation, checkpoints): model cards report training time only;
    * :meth:`card` is the part of a model card every trainer writes (training time, hardware).

    ``writes=False`` (DDP ranks other than 0) reads and checks the state but writes nothing. ``flag`` names
    the folder's command-line flag in messages. ``defaults`` fill keys that states of older versions lack.
    ``time_budget`` (seconds of wall-clock time from now, or None): :meth:`out_of_time` says when a trainer
    should stop at its next checkpoint, so that a run fits a GPU lease or a session and ``--resume`` goes on.
    """

    def __init__(self, folder: str | Path, state_name: str, config: dict, allowed: Iterable[str] = (),
                 resume: bool = False, flag: str = "--out", defaults: dict | None = None, writes: bool = True,
                 time_budget: float | None = None):
        import time

        if time_budget is not None and not time_budget > 0:
            raise InputError(f"the time budget must be a positive number of seconds, got {time_budget!r}")
        self.folder, self.config, self.flag, self.writes = Path(folder), config, flag, writes
        self.time_budget, self._started = time_budget, time.perf_counter()
        self.state_path = self.folder / state_name
        self.state: dict | None = None
        if resume:
            self.state = load_state(self.state_path)
            check_resume_config({**(defaults or {}), **self.state["config"]}, config, allowed, self.state_path, flag)
        elif self.state_path.exists():
            raise FileExistsError(f"{self.state_path} exists; pass --resume to continue that run or choose another "
                                  f"{flag}")
        self.wall = float(self.state.get("wall_s", 0.0)) if self.state else 0.0
        self._t = None
        self._writer = None
        if writes:
            self.folder.mkdir(parents=True, exist_ok=True)

    def save_state(self, state: dict) -> None:
        """The resume state, replaced whole (``config`` and the training time ``wall_s`` added)."""
        if self.writes:
            from .fileio import save_torch

            save_torch({**state, "config": self.config, "wall_s": self.wall}, self.state_path)

    def writer(self, logged_through: int = 0, subdir: str = ""):
        """The run's TensorBoard ``SummaryWriter`` (in ``folder/subdir``), created on first use; None when this
        process does not write. ``logged_through``: the last step, in the units the run logs its points at, that
        the resume state covers (0 for a new run). TensorBoard drops the earlier files' points after it, which
        a killed run logged past its last checkpoint and the resumed run logs again; the points up to it stay."""
        if self._writer is None and self.writes:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: points at this step and later are dropped
            self._writer = SummaryWriter(str(self.folder / subdir),
                                         purge_step=logged_through + 1 if logged_through else None)
        return self._writer

    def progress(self, enabled: bool, total: int, initial: int, desc: str, unit: str = "it"):
        """A tqdm bar (rarely refreshed when stderr is not a terminal), or None."""
        if not (enabled and self.writes):
            return None
        import sys

        from tqdm import tqdm

        tty = sys.stderr.isatty()
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=tty,
                    mininterval=0.5 if tty else 60)

    def restart_clock(self) -> None:
        """Start timing from now (what ran since the last tick is not training time)."""
        import time

        self._t = time.perf_counter()

    def tick(self) -> float:
        """Add the time since the last tick (or :meth:`restart_clock`) to :attr:`wall`; returns it."""
        import time

        now = time.perf_counter()
        if self._t is not None:
            self.wall += now - self._t
        self._t = now
        return self.wall

    def out_of_time(self) -> bool:
        """Whether the wall-clock time since this Run was made has reached its ``time_budget``."""
        import time

        return self.time_budget is not None and time.perf_counter() - self._started >= self.time_budget

    def card(self, device: torch.device, hardware: str | None = None) -> dict:
        """The model-card fields every trainer records: training time and hardware."""
        return {"wall_time_s": round(self.wall, 1), "hardware": hardware or hardware_string(device)}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
