"""How long `hpcannotate --help` and the catalogue commands take, as a user starts them.

Target: `hpcannotate --help` < 0.3 s. Prints the median and worst of N runs for
each command, and `python -c pass` measured in the same run as the floor.

    python bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_HELP_S = 0.3


def timed(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("hpcannotate"))
    if not Path(exe).exists():
        exe = shutil.which("hpcannotate") or sys.exit("hpcannotate is not installed")
    example = str(Path(__file__).resolve().parents[1] / "examples" / "metahub-gromacs-mpich.yaml")
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "hpcannotate --help": [exe, "--help"],
        "hpcannotate keys --json": [exe, "keys", "--json"],
        "hpcannotate schema": [exe, "schema"],
        "hpcannotate validate FILE": [exe, "validate", example],
    }
    print(f"{'command':28} {'median s':>9} {'max s':>7}  ({args.runs} runs each)")
    results = {}
    for name, argv in cases.items():
        times = timed(argv, args.runs)
        results[name] = statistics.median(times)
        print(f"{name:28} {statistics.median(times):9.3f} {max(times):7.3f}")
    verdict = "OK" if results["hpcannotate --help"] < TARGET_HELP_S else "OVER TARGET"
    print(f"--help median {results['hpcannotate --help']:.3f} s, target < {TARGET_HELP_S} s: {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
