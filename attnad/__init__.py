"""attnad: batch anomaly detection with attention models.

Importing attnad sets OMP_WAIT_POLICY=PASSIVE in the environment unless it is already set. Torch's
CPU build runs its parallel loops on OpenMP (libgomp), whose idle threads otherwise spin for a few
milliseconds at every barrier before they sleep; when another process uses one of the cores (cron
and CI machines), the threads that do have work wait for the one that was descheduled and the
spinning ones burn its CPU time: a one-shot `detect` ran 5 to 10 times slower than with one
thread (benchmarks/threads.py, benchmarks/results/threads.md). Passive threads sleep at once: a
little slower on an idle machine, close to one thread on a busy one, same scores.

libgomp reads the variable once, when torch is imported, so this only takes effect when attnad is
imported first (the CLI always is). A program that imports torch before attnad keeps OpenMP's
default: set OMP_WAIT_POLICY=PASSIVE in its environment, or import attnad first. Set
OMP_WAIT_POLICY=ACTIVE (or GOMP_SPINCOUNT) to choose spinning on a machine of one's own.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
