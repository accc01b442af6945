"""The queue waiter, which the local backend puts in front of every training command it starts::

    python -m genapp.jobs.waiter --runs-dir D --run NAME --family F --max-jobs N --nice K -- COMMAND...

It lowers its priority by K (so that training yields the CPU to the explorer's server: pages stay
responsive while jobs use every core), waits its turn in the server's queue (``genapp.jobs.queue``:
first come, first served; N = 0: no limit, no wait), takes a free slot and then ``exec``s
COMMAND: the training process keeps the waiter's pid, priority and slot lock, so the slot frees
itself exactly when training ends, however it ends. Standard library only: a job waiting for its
turn costs about 15 MB, not the 200+ MB of a process that has loaded torch.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from genapp.jobs.queue import POLL_SECONDS, TICKET_ENV, write_ticket, queue, take_slot, ticket_path


def wait_for_slot(runs_dir: str | Path, run: str, family: str, limit: int, log=print) -> tuple[int, int]:
    """Queue for one of ``limit`` slots (first come, first served); returns the descriptors of the
    slot and of the "started" ticket, both locked, for the training process to keep.

    Only the head of the queue takes a slot, so later jobs never overtake it.
    """
    runs_dir = Path(runs_dir)
    ticket_fd = write_ticket(runs_dir, run, family)
    queued = json.loads(ticket_path(runs_dir, run).read_text(encoding="utf-8"))["queued"]
    reported = 0
    slot = None
    try:
        while slot is None:
            mine = next((t for t in queue(runs_dir) if t.run == run), None)
            position = mine.position if mine else 1
            if position == 1:
                slot = take_slot(limit)
                if slot is not None:
                    return slot, write_ticket(runs_dir, run, family, queued)
            if position != reported:
                log(f"waiting for a free training slot ({limit} at a time): position {position} in the queue")
                reported = position
            time.sleep(POLL_SECONDS)
    except BaseException:
        ticket_path(runs_dir, run).unlink(missing_ok=True)  # we hold its lock: ours to remove
        if slot is not None:
            os.close(slot)
        raise
    finally:
        os.close(ticket_fd)
    raise AssertionError("not reached")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genapp.jobs.waiter",
                                     description="Wait for a free training slot, then run COMMAND in its place.")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--family", default="")
    parser.add_argument("--max-jobs", type=int, required=True, help="jobs at a time (0 = no limit)")
    parser.add_argument("--nice", type=int, default=0, help="lower the priority by this much (0-19)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the training command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.max_jobs < 0:
        parser.error("needs --max-jobs of at least 0 and a command after --")
    if args.nice > 0 and hasattr(os, "nice"):
        os.nice(args.nice)
    if args.max_jobs == 0:
        sys.stdout.flush()
        os.execvp(command[0], command)

    def cancel(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, cancel)  # Stop while waiting: leave the queue, write nothing
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        held = wait_for_slot(args.runs_dir, args.run, args.family, args.max_jobs, log)
    except SystemExit:
        log("left the queue before training started (stopped)")
        raise
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log("a training slot is free: starting")
    for fd in held:  # the training process holds the slot until it exits, the ticket until it starts
        os.set_inheritable(fd, True)
    os.environ[TICKET_ENV] = str(ticket_path(args.runs_dir, args.run).resolve())
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
