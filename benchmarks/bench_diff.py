"""`segcheck diff` on generated worlds (benchmarks/worlds.py): what comparing two states costs beyond listing the
two expected matrices it compares (the baseline, measured in the same run on the same states).

The head state is the base with one policy removed and one allow rule added, so changes of every kind appear.
Run: python3 benchmarks/bench_diff.py [--sizes 100x20,300x40]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from segcheck.agent.adapters.manifest_files import parse_yaml  # noqa: E402
from segcheck.agent.core.enforcement import DEFAULT_PROFILE  # noqa: E402
from segcheck.agent.core.manifests import RawObject, build_inventory  # noqa: E402
from segcheck.agent.core.model import Ref  # noqa: E402
from segcheck.agent.core.reachability import NetworkReachability  # noqa: E402
from segcheck.agent.runtime.diff import diff_states  # noqa: E402
from worlds import NETWORK, world_objects  # noqa: E402

POLICIES_FILE = "40-policies.json"
OPENING_RULE = {"ports": [{"protocol": "TCP", "port": 2222}]}


def inventory(objects: dict[str, list[dict]]):
    inv, errors = build_inventory([RawObject(name, o) for name, items in objects.items() for o in items], parse_yaml)
    assert not errors, errors[:3]
    return inv


def head_of(base: dict[str, list[dict]]) -> dict[str, list[dict]]:
    head = copy.deepcopy(base)
    policies = head[POLICIES_FILE]
    policies.pop()  # a policy removed
    egress = next(p for p in policies if "Egress" in p["spec"].get("policyTypes", []))
    egress["spec"].setdefault("egress", []).append(OPENING_RULE)  # and an allow rule added
    return head


def bench(attachments: int, policies: int) -> None:
    base_objects = world_objects(attachments, policies)
    base, head = inventory(base_objects), inventory(head_of(base_objects))
    net = Ref.parse(NETWORK, "default")
    t0 = time.process_time()
    cells = [sum(1 for _ in NetworkReachability(s, net, profile=DEFAULT_PROFILE).cells()) for s in (base, head)]
    baseline = time.process_time() - t0
    t0 = time.process_time()
    report = diff_states(base, head, DEFAULT_PROFILE, network=net)
    seconds = time.process_time() - t0
    counts = report.networks[0].diff.counts()
    print(f"{attachments:>6} x {policies:<4} {cells[0]:>9,} / {cells[1]:>9,} cells   matrices {baseline:7.2f} s   "
          f"diff {seconds:7.2f} s   ratio {seconds / baseline:5.2f}x   " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100x20,300x40", help="ATTACHMENTSxPOLICIES,... (default: %(default)s)")
    args = parser.parse_args()
    print("attachments x policies, cells base / head, CPU seconds: both matrices listed vs diff (which lists them too)")
    for size in args.sizes.split(","):
        a, p = size.split("x")
        bench(int(a), int(p))


if __name__ == "__main__":
    main()
