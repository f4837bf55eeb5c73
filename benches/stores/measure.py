#!/usr/bin/env python3
"""measure.py BIN RUNS DB ARGS...: runs `BIN --db DB ARGS` RUNS times (stdout
and stderr to /dev/null, NO_COLOR set) and prints the medians of the child's
wall time, CPU time (user + system) and peak RSS (wait4's ru_maxrss; Linux
starts it at the spawning process's size, about 14 MiB here, so smaller
children read as that floor). `{r}` in an argument becomes 0, 100, 200, …
(run r), to confirm a different chain's root each run."""
import os, sys, time, subprocess, statistics
binp, runs, db, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
env = dict(os.environ, NO_COLOR="1"); env.pop("T_MINUS_NOW", None)
walls, rss, cpu = [], [], []
devnull = os.open(os.devnull, os.O_WRONLY)
for _ in range(runs):
    t = time.perf_counter()
    a = [x.replace("{r}", str(_ * 100)) for x in args]
    pid = os.posix_spawn(binp, [binp, "--db", db, *a], env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, ru = os.wait4(pid, 0)
    walls.append((time.perf_counter() - t) * 1000); rss.append(ru.ru_maxrss / 1024); cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    if os.waitstatus_to_exitcode(status) != 0:
        print("FAILED", args, status); sys.exit(1)
print(f"wall {statistics.median(walls):8.1f} ms  cpu {statistics.median(cpu):8.1f} ms  rss {statistics.median(rss):6.1f} MiB  {' '.join(args)}")
