"""CPU time and resident memory of a local server, read from /proc (Linux).

`voice-agent serve --workers N` is a supervisor with N worker children, so a server is
measured as its whole process tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float  # user + system CPU seconds since the processes started
    rss_bytes: int
    processes: int
    open_fds: int  # file descriptors (sockets, files, pipes) held


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now."""
    pids, index = [pid], 0
    while index < len(pids):
        pids.extend(_children(pids[index]))
        index += 1
    return pids


def usage(pid: int) -> Usage | None:
    """Summed over the process tree; None once the root process is gone."""
    cpu_ticks = 0
    rss_pages = 0
    alive = 0
    fds = 0
    for member in tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
            statm = Path(f"/proc/{member}/statm").read_text()
        except OSError:
            if member == pid:
                return None
            continue
        # Fields after the command name (which may hold spaces) start at ") ".
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu_ticks += int(fields[11]) + int(fields[12])  # utime, stime
        rss_pages += int(statm.split()[1])
        alive += 1
        try:
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            pass
    return Usage(cpu_ticks / _TICKS, rss_pages * _PAGE, alive, fds)
