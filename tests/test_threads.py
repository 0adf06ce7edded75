"""Thread policy for shared machines (issue 19, item 7; benchmarks/threads.py): idle OpenMP threads
sleep instead of spinning, set before torch is imported, and `train.threads: 0` means the CPUs the
process may use, not the machine's. Each check runs in a fresh interpreter with no OpenMP
variables of its own (conftest sets OMP_NUM_THREADS for this process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OMP_DISPLAY_ENV")


def fresh(code: str, **env_add: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(env_add)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)


def test_importing_attnad_first_makes_idle_openmp_threads_sleep():
    # OMP_DISPLAY_ENV: libgomp prints the settings it read when torch loaded it
    r = fresh("import os, attnad, torch; torch.ones(1 << 16).sum(); "
              "print(os.environ.get('OMP_WAIT_POLICY'))", OMP_DISPLAY_ENV="TRUE")
    assert r.stdout.split()[-1] == "PASSIVE"
    if "GOMP_SPINCOUNT" in r.stderr:  # libgomp (Linux wheels): no spinning at all
        assert "GOMP_SPINCOUNT = '0'" in r.stderr, r.stderr


def test_a_wait_policy_of_ones_own_is_kept():
    r = fresh("import os, attnad; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY="ACTIVE")
    assert r.stdout.split()[-1] == "ACTIVE"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_threads_0_uses_the_cpus_the_process_may_run_on():
    cpu = sorted(os.sched_getaffinity(0))[0]
    r = fresh(f"import os; os.sched_setaffinity(0, {{{cpu}}}); import torch; "
              "from attnad.training import set_threads; torch.set_num_threads(4); set_threads(0); "
              "print(torch.get_num_threads())")
    assert r.stdout.split()[-1] == "1"
    r = fresh("import torch; from attnad.training import set_threads, usable_cpus; "
              "set_threads(3); print(torch.get_num_threads(), usable_cpus())")
    threads, usable = map(int, r.stdout.split())
    assert threads == 3 and 1 <= usable <= (os.cpu_count() or 1)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_the_process_or_a_parent(tmp_path):
    from attnad.training import cgroup_cpu_limit
    root, proc = tmp_path / "cg", tmp_path / "self_cgroup"
    write(proc, "0::/ci/job7\n")
    write(root / "cpu.max", "max 100000\n")
    write(root / "ci/cpu.max", "250000 100000\n")
    write(root / "ci/job7/cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(str(root), str(proc)) == 2.5
    write(root / "ci/job7/cpu.max", "100000 100000\n")
    assert cgroup_cpu_limit(str(root), str(proc)) == 1.0
    write(root / "ci/cpu.max", "max 100000\n")
    write(root / "ci/job7/cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(str(root), str(proc)) is None


def test_cgroup_v1_quota(tmp_path):
    from attnad.training import cgroup_cpu_limit
    root, proc = tmp_path / "cg", tmp_path / "self_cgroup"
    write(proc, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    write(root / "cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(root / "cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(str(root), str(proc)) is None
    write(root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n")
    write(root / "cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(str(root), str(proc)) == 1.5
    assert cgroup_cpu_limit(str(tmp_path / "none"), str(tmp_path / "missing")) is None
