"""attnad: batch anomaly detection with attention models.

Importing attnad sets OMP_WAIT_POLICY=PASSIVE in the environment unless it is already set. Torch's
CPU build runs its parallel loops on OpenMP (libgomp), whose idle threads otherwise spin (about
300,000 rounds) at every barrier before they sleep. When another process uses one of the cores
(cron and CI machines), the threads that have finished spin while the one that shares its core
with the other process has not, and take CPU time from it: with one competing process a one-shot
`detect` ran 9 to 14 times slower than with one thread, `score` 9 times (benchmarks/threads.py,
benchmarks/results/threads.md). Passive threads sleep at once: same scores, within 1.3x of one
thread on a busy machine; on an idle one up to 1.7x slower than spinning for small jobs.

libgomp reads the variable once, when torch is imported, so this only takes effect when attnad is
imported before torch (the CLI always is). A program that imports torch first keeps OpenMP's
default: import attnad first or set OMP_WAIT_POLICY=PASSIVE in its environment. On a machine of
one's own, OMP_WAIT_POLICY=ACTIVE (or GOMP_SPINCOUNT) chooses spinning again.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
