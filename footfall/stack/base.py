"""What every local service has in common: its processes, pid files, logs and health."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from footfall.settings import Settings


class StackError(RuntimeError):
    """A service could not be fetched, started or reached; the message says which and why."""


@dataclass(frozen=True)
class ProcessSpec:
    """One long-running OS process that belongs to a service."""

    name: str
    argv: Sequence[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages that show why a start failed."""
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0]), or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, or None when it is gone."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, field: str) -> int:
    """A memory line of /proc/PID/status (`VmRSS`, `VmHWM`...), in KiB; 0 when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def process_start_ticks(pid: int) -> str:
    """The kernel's start time of a process (stat field 22): with the pid, a unique identity.

    A pid file stores both, so a pid reused by an unrelated process after ours died is never
    taken for ours (and never signalled by `down`).
    """
    fields = proc_stat(pid)
    return fields[19] if fields is not None else ""


class Service(ABC):
    """A real component of the stack (Kafka, InfluxDB, HBase, Spark) run on 127.0.0.1."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / self.name
        self.cache = settings.cache_dir

    # --- what a service defines --------------------------------------------------
    @abstractmethod
    def address(self) -> str:
        """Where clients reach the service, as printed by `footfall stack status`."""

    @abstractmethod
    def check(self) -> str | None:
        """None when the service answers as it should, else why not (one line)."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Fetch what the service needs (cached) and write its configuration (idempotent)."""

    def processes(self) -> list[ProcessSpec]:
        """The processes to start, in order; empty for services run in-process (Spark)."""
        return []

    def after_start(self) -> None:  # noqa: B027 - optional hook
        """Work to do once the service answers (create databases, tables)."""

    # --- lifecycle shared by all ---------------------------------------------------
    def pid_file(self, process: str) -> Path:
        return self.home / "run" / f"{process}.pid"

    def log_file(self, process: str) -> Path:
        return self.home / "logs" / f"{process}.out"

    def running_pids(self) -> dict[str, int]:
        """Processes of this service started by us and still alive, by name."""
        alive: dict[str, int] = {}
        run_dir = self.home / "run"
        if not run_dir.is_dir():
            return alive
        for pid_path in sorted(run_dir.glob("*.pid")):
            pid_text, _, started = pid_path.read_text().strip().partition(" ")
            try:
                pid = int(pid_text)
            except ValueError:
                continue
            if pid_alive(pid) and process_start_ticks(pid) == started:
                alive[pid_path.stem] = pid
        return alive

    def start(self) -> bool:
        """Start what is not running and wait until healthy; False when it already was."""
        if self.check() is None:
            return False
        self.prepare()
        running = self.running_pids()
        for spec in self.processes():
            if spec.name in running:
                continue
            self._spawn(spec)
        self.wait_healthy()
        self.after_start()
        return True

    def _spawn(self, spec: ProcessSpec) -> None:
        log_path = self.log_file(spec.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file(spec.name).parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env}
        with log_path.open("ab") as log:
            banner = f"\n=== footfall stack: starting {spec.name} at {time.ctime()} ===\n"
            log.write(banner.encode())
            log.flush()
            proc = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # `down` signals the whole group; Ctrl-C here does not.
            )
        self.pid_file(spec.name).write_text(f"{proc.pid} {process_start_ticks(proc.pid)}")

    def wait_healthy(self) -> None:
        """Poll `check` until it passes; on timeout or an early exit, raise with the log tail."""
        deadline = time.monotonic() + self.settings.stack_start_timeout_s
        reason = "not checked yet"
        attempt = 0
        while time.monotonic() < deadline:
            reason = self.check() or ""
            if not reason:
                return
            expected = {spec.name for spec in self.processes()}
            dead = expected - set(self.running_pids())
            if dead:
                name = sorted(dead)[0]
                raise StackError(
                    f"{self.name}: process {name!r} exited during start-up ({reason}).\n"
                    f"--- tail of {self.log_file(name)} ---\n{log_tail(self.log_file(name))}"
                )
            time.sleep(min(1.0, 0.1 * 2**attempt))  # fast services answer at the 1st poll
            attempt += 1
        tails = "\n".join(
            f"--- tail of {self.log_file(spec.name)} ---\n{log_tail(self.log_file(spec.name))}"
            for spec in self.processes()
        )
        raise StackError(
            f"{self.name}: not healthy after {self.settings.stack_start_timeout_s:.0f}s: "
            f"{reason}\n{tails}"
        )

    def stop(self, timeout_s: float = 30.0) -> list[str]:
        """Stop the processes this stack started (by pid file, newest first); return their names."""
        stopped: list[str] = []
        for name, pid in reversed(list(self.running_pids().items())):
            _terminate_group(pid, timeout_s)
            self.pid_file(name).unlink(missing_ok=True)
            stopped.append(name)
        return stopped


def _terminate_group(pid: int, timeout_s: float) -> None:
    """SIGTERM the process group led by pid, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.2)
