"""What the two firewall benchmarks share: how one analysis is measured in a fresh process, and how
the results are judged against issue 3's targets (< 1 s, < 150 MB, 10x the input <= 12x the time)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

MEASURE = r"""
import json, sys, time
start = time.perf_counter()
from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.platform import load_platform
imported = time.perf_counter()
summary = analyse_layers([LayerSource(sys.argv[1], sys.argv[2])], load_platform(), port=443,
                         ipsets=[LayerSource(path) for path in sys.argv[3:]])
done = time.perf_counter()
# VmHWM is this process's own peak RSS (ru_maxrss would carry the parent's peak across exec).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": done - imported, "import_seconds": imported - start, "peak_rss_mb": hwm / 1024,
                  "blocked": summary.blocked_addresses, "findings": [f.code for f in summary.findings]}))
"""


def address(rng: random.Random) -> str:
    """A public-looking address outside the published ranges (so the verdict stays the same at every size)."""
    return f"{rng.randint(1, 80)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def measure(layer: Path, layer_type: str, repeat: int, ipsets: tuple[Path, ...] = ()) -> dict[str, object]:
    """Best time and highest peak RSS of `repeat` analyses, each in a fresh process (imports not counted)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(layer), layer_type, *map(str, ipsets)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def report(label: str, rules: int, networks: int, small: dict[str, object], large: dict[str, object]) -> int:
    """Print the results of the N/10 and N runs and whether the targets are met; the exit code."""
    ratio = float(large["seconds"]) / float(small["seconds"])  # type: ignore[arg-type]
    print(f"{label}{rules // 10:>7} rules + {networks // 10:>7} networks: {small['seconds']:.3f} s, "
          f"peak RSS {small['peak_rss_mb']:.0f} MB")
    print(f"{label}{rules:>7} rules + {networks:>7} networks: {large['seconds']:.3f} s, "
          f"peak RSS {large['peak_rss_mb']:.0f} MB (imports {large['import_seconds']:.3f} s, not counted)")
    print(f"growth for 10x the input: {ratio:.1f}x the time (target <= 12x)")
    print(f"verdict: blocked={large['blocked']} findings={large['findings']}")
    ok = float(large["seconds"]) < 1.0 and float(large["peak_rss_mb"]) < 150 and ratio <= 12  # type: ignore[arg-type]
    print("targets met" if ok else "TARGETS MISSED (< 1 s, < 150 MB, <= 12x)")
    return 0 if ok else 1
