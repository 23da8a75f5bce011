"""Frames per second on an idle and on a busy host, per CPU thread setting (issue 15).

A surveillance host runs other work beside the pipeline. This runs `Pipeline.process` on one small
real frame (the first frame of `hamilton_clip.mp4` shrunk 4x: 160 x 90, the performer's face about
16-20 px, so detection, hallucination and embedding all run) for `--seconds`, first with the host as
it is, then while a CPU burner keeps every core busy: one pure-Python spinning process per core,
started as a subprocess that stops by itself after its deadline. Each thread setting is measured
idle and loaded back to back in one run, so the ratio idle/loaded compares like with like. Then two
pipelines in one process (one per camera, each stepping in its own Python thread) are measured the
same way, at each thread setting.

First one pure-Python spinning thread is measured the same way: the slowdown that any single-threaded
work at the same priority meets under this burner (on 2 cores the scheduler gives it about 2/3 of a core,
so about 1.5x), the floor for a pipeline at 1 thread. Every row also reports the CPU seconds per second the
work got and the CPU milliseconds per frame, idle and loaded: equal milliseconds per frame mean the slowdown
is the scheduler's sharing of the cores, not contention for caches or memory.

Thread settings: 1, the physical cores, and the cores minus the current load (the three usual
answers); `--threads` picks others.

    python benchmarks/busy_host.py --data ../shared/data --out busy_host.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2

BURNER = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def small_frame(data: Path):
    capture = cv2.VideoCapture(str(data / "video" / "hamilton_clip.mp4"))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read {data / 'video' / 'hamilton_clip.mp4'}: pass --data the shared data folder")
    return cv2.resize(frame, (frame.shape[1] // 4, frame.shape[0] // 4), interpolation=cv2.INTER_AREA)


class Burner:
    """`workers` spinning processes that exit by themselves after `seconds` (and are killed on exit).

    By default they run in a session of their own, as another service on the host does (systemd gives
    each service its own cgroup; Linux's autogroup scheduler, on by default, gives each session its
    own): the scheduler then shares the cores between the pipeline and the burner, not between the
    pipeline's one thread and each burner process. same_session=True puts them in the pipeline's
    session, like extra busy threads of the same service."""

    def __init__(self, workers: int, seconds: float, same_session: bool = False):
        self.processes = [
            subprocess.Popen([sys.executable, "-c", BURNER, str(seconds)], start_new_session=not same_session)
            for _ in range(workers)
        ]
        time.sleep(0.3)  # let them reach the loop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
            process.wait()


def fps(pipes, frame, seconds: float) -> tuple[float, float]:
    """(frames per second summed over `pipes`, CPU seconds per second the process used), each pipe
    processing `frame` in its own thread for `seconds`. The process's CPU time counts every pool's threads."""
    counts = [0] * len(pipes)
    end = time.perf_counter() + seconds

    def loop(i):
        while time.perf_counter() < end:
            pipes[i].process(frame)
            counts[i] += 1

    started, started_cpu = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(len(pipes))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    return sum(counts) / wall, (time.process_time() - started_cpu) / wall


def spin(seconds: float) -> tuple[float, float]:
    """(loop turns per second, CPU seconds per second) of one pure-Python thread: the slowdown that any
    single-threaded work at the same priority meets under the burner, whatever it computes."""
    turns, end = 0, time.perf_counter() + seconds
    started, started_cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() < end:
        turns += 1
    wall = time.perf_counter() - started
    return turns / wall, (time.process_time() - started_cpu) / wall


def measure(work, seconds: float, rounds: int, burners: int, same_session: bool) -> dict:
    """Medians over `rounds` alternating idle and loaded spells (the host's other load drifts) of
    `work(seconds)` -> (rate, CPU seconds per second)."""
    idle, loaded = [], []
    for _ in range(rounds):
        idle.append(work(seconds / rounds))
        with Burner(burners, seconds / rounds + 5, same_session):
            loaded.append(work(seconds / rounds))
    rate_idle, rate_loaded = (statistics.median(rate for rate, _ in spells) for spells in (idle, loaded))
    share_idle, share_loaded = (statistics.median(share for _, share in spells) for spells in (idle, loaded))
    return {
        "rate_idle": round(rate_idle, 2),
        "rate_loaded": round(rate_loaded, 2),
        "slowdown": round(rate_idle / rate_loaded, 2),
        # the CPU the work got: a slowdown that these explain is the scheduler's sharing, not contention
        "cpu_share_idle": round(share_idle, 3),
        "cpu_share_loaded": round(share_loaded, 3),
        "cpu_ms_per_unit_idle": round(1000 * share_idle / rate_idle, 3),
        "cpu_ms_per_unit_loaded": round(1000 * share_loaded / rate_loaded, 3),
    }


def physical_cores() -> int:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cores = {
            (a, b)
            for a, b in zip(
                [line.split(":")[1].strip() for line in lines if line.startswith("physical id")],
                [line.split(":")[1].strip() for line in lines if line.startswith("core id")],
            )
        }
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (video/hamilton_clip.mp4)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="thread settings to compare (default: 1, physical cores, cores minus load)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement, idle and loaded each")
    parser.add_argument("--rounds", type=int, default=4, help="alternating idle/loaded spells per measurement")
    parser.add_argument("--burners", type=int, default=None, help="spinning processes (default: one per core)")
    parser.add_argument(
        "--burner-same-session",
        action="store_true",
        help="run the burner in this process's session (like busy threads of the same service)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    import fhsdk
    from fhsdk.threads import DEFAULT_THREADS

    cores, load = physical_cores(), os.getloadavg()[0]
    settings = args.threads or sorted({1, cores, max(1, round(cores - load))})
    burners = args.burners or (os.cpu_count() or 1)
    frame = small_frame(args.data)
    report = {
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical / {cores} physical cores",
        "load_average_at_start": round(load, 2),
        "burner_processes": burners,
        "burner_session": "same" if args.burner_same_session else "own",
        "seconds": args.seconds,
        "rounds": args.rounds,
        "frame": f"{frame.shape[1]}x{frame.shape[0]}",
        "default_threads": DEFAULT_THREADS,
        "torch": torch.__version__,
        "one_pipeline": {},
        "two_pipelines": {},
    }
    pipes = [fhsdk.Pipeline(min_face_size=12, threads=settings[0]) for _ in range(2)]
    faces = pipes[0].process(frame).faces
    report["faces"] = [{"size_px": f.size_px, "hallucinated": f.hallucinated} for f in faces]
    report["one_spinning_thread"] = measure(spin, args.seconds, args.rounds, burners, args.burner_same_session)
    print("one spinning thread (the floor):", json.dumps(report["one_spinning_thread"]), flush=True)
    for threads in settings:
        fhsdk.threads.apply(threads)  # process-wide, as Pipeline(threads=...) does
        fps(pipes[:1], frame, 1.0)  # warm-up at this setting
        for key, group in (("one_pipeline", pipes[:1]), ("two_pipelines", pipes)):
            report[key][threads] = measure(
                lambda seconds, group=group: fps(group, frame, seconds),
                args.seconds,
                args.rounds,
                burners,
                args.burner_same_session,
            )
        print(
            threads,
            "threads:",
            json.dumps(report["one_pipeline"][threads]),
            "two pipelines:",
            json.dumps(report["two_pipelines"][threads]),
            flush=True,
        )
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
