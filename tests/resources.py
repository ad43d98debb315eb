"""What a process under attack costs: its memory, read from /proc (Linux)."""

from __future__ import annotations

from pathlib import Path

# Acceptance 5 of issue 9: an attack replayed grows a process by less than this.
MAX_GROWTH_KIB = 100 * 1024


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since the process started), in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


class MemoryWatch:
    """A process's RSS before an attack; `growth_kib` is its peak since, above that."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = memory_kib(pid)["VmRSS"]

    def growth_kib(self) -> int:
        return memory_kib(self.pid)["VmHWM"] - self.before

    def check(self, what: str) -> None:
        growth = self.growth_kib()
        assert growth < MAX_GROWTH_KIB, f"{what}: the process grew by {growth // 1024} MiB"
