"""Reliability report: what the hardening suites tried, at a larger budget, and what held.

Runs the hardening tests (fuzzing, security, concurrency and faults, model-loading faults,
metadata crash-safety, hostile visitors, the queue per visitor) in one pytest process with raised budgets, collects their measurements
(fuzz cases run, concurrent clients, generations, memory growth) and their outcomes, prints a
Markdown table and writes JSON. The same tests run at CI budgets in the normal test command.

    python3 bench/reliability.py                                  # 2000 examples a property, 16 clients
    python3 bench/reliability.py --fuzz-examples 500 --clients 8 --generations 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Area -> (test file, what its tests try). The table's rows; counts come from the run itself.
AREAS = {
    "Fuzzing": (("tests/unit/test_input_fuzzing.py",), "request validator, prompt parsers, LoRA tags, infotext "
                "reader, hostile and truncated PNGs, any prompt's PNG round trip"),
    "Security": (("tests/engine/test_path_policy.py", "tests/app/test_file_serving.py"),
                 "paths outside the folders (plain, .., symlink) for models and LoRAs, file serving of /etc/passwd, "
                 "the code, presets, ~; --share without --auth"),
    "Concurrency and faults": (("tests/app/test_concurrent_clients.py", "tests/engine/test_memory.py"),
                               "N clients at once vs alone, cancels among them, a full queue, a client killed "
                               "mid-run, memory over many runs"),
    "Model loading faults": (("tests/engine/test_model_loading.py",), "offline Hub, missing path, corrupt and "
                             "non-checkpoint .safetensors, pickle refusal, the previous model still working"),
    "Outputs": (("tests/unit/test_metadata.py", "tests/engine/test_output_folder.py"),
                "a crash while writing a PNG, truncated and non-image files, A1111 samples"),
    "Bad values at the doors": (("tests/app/test_gradio_api.py", "tests/engine/test_generation.py"),
                                "out-of-range and unknown values through gradio_client, OOM mid-run"),
    "Hostile input": (("tests/unit/test_hostile_input.py", "tests/app/test_hostile_api.py"),
                      "adversarial prompts doubled (linear time), caps at every text door, pictures measured "
                      "before decoding, editor blobs and layers bounded, exact LoRA names, pickle folders, wrong "
                      "types at every API parameter, the cost cap"),
    "Work the cost counts": (("tests/unit/test_cost_limits.py", "tests/engine/test_cost_of_work.py"),
                             "BREAK floods of prompt chunks refused by name and counted per encoder, Stop between "
                             "chunks, ControlNet pictures of extreme aspect or size refused before preprocessing, "
                             "preprocessing counted per module"),
    "Bodies, uploads and sessions": (("tests/unit/test_body_caps.py", "tests/app/test_body_limits.py"),
                                     "a 900 MB upload, a 100 MB queue join, chunked bodies cut off with nothing "
                                     "left on disk, millions of tiny JSON items refused before parsing, upload "
                                     "quotas per address, sessions kept and dropped"),
    "The A1111 door": (("tests/app/test_a1111_hardening.py", "tests/app/test_real_clients.py"),
                       "body cap, nesting, options keys, units counted and pictures measured before decoding, "
                       "decompression bombs, wrong types, a caller hanging up mid-batch; webuiapi still works"),
    "One path rule": (("tests/unit/test_path_rule.py", "tests/app/test_null_errors.py"),
                      "owner/name never a local folder, one answer whether a path exists, no absolute paths in "
                      "messages, damaged pictures named instead of null errors"),
    "One visitor's reach": (("tests/unit/test_queue_share.py", "tests/app/test_visitor_reach.py",
                             "tests/browser/test_shared_studio.py"),
                            "made-up session ids from one address held to its queue share, helpers answering with "
                            "the GPU queue full, a stranger's stream of another's session refused, from another "
                            "address and from the same one without the visitor cookie"),
    "The queue per visitor": (("tests/app/test_visitor_queue.py", "tests/unit/test_sessions.py"),
                              "one visitor's waiting requests capped (--max-queued), Stop and cancel removing "
                              "waiting requests before a step runs, a client gone with requests waiting, a forged "
                              "cancel / Stop / History with another's session id, a history entry copied into another tab"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz-examples", type=int, default=2000, help="examples per fuzz property")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--generations", type=int, default=500, help="sequential generations for the memory check")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reliability.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "measurements.jsonl", Path(tmp) / "junit.xml"
        env = {**os.environ, "STUDIO_FUZZ_EXAMPLES": str(args.fuzz_examples), "STUDIO_CLIENTS": str(args.clients),
               "STUDIO_GENERATIONS": str(args.generations), "STUDIO_RELIABILITY_LOG": str(log),
               "HF_HUB_OFFLINE": "1"}
        files = sorted({f for group, _ in AREAS.values() for f in group})
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                        *files], cwd=ROOT, env=env, check=False)
        wall = time.perf_counter() - start
        measured = {}
        if log.exists():
            for line in log.read_text().splitlines():
                item = json.loads(line)
                measured[item["name"]] = item["value"]
        outcomes: dict[str, list[int]] = {}
        failures = []
        for case in ET.parse(junit).getroot().iter("testcase"):
            file = case.get("file") or (case.get("classname", "").replace(".", "/") + ".py")
            ok = not any(child.tag in ("failure", "error") for child in case)
            skipped = any(child.tag == "skipped" for child in case)
            counts = outcomes.setdefault(file, [0, 0, 0])
            counts[0 if ok and not skipped else 2 if skipped else 1] += 1
            if not ok:
                failures.append(f"{file}::{case.get('name')}")

    rows = []
    for area, (group, tried) in AREAS.items():
        passed, failed, skipped = (sum(outcomes.get(file, [0, 0, 0])[k] for file in group) for k in range(3))
        rows.append({"area": area, "tried": tried, "tests": passed + failed, "failed": failed, "skipped": skipped})
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "budgets": {"fuzz examples per property": args.fuzz_examples, "clients": args.clients,
                    "generations": args.generations},
        "measured": measured, "areas": rows, "failures": failures, "wall_s": round(wall, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nReliability report ({report['machine']}, {wall:.0f} s)\n")
    print("| area | what was tried | tests | held |")
    print("|---|---|---|---|")
    for row in rows:
        held = "all" if row["failed"] == 0 else f"{row['tests'] - row['failed']}/{row['tests']}"
        print(f"| {row['area']} | {row['tried']} | {row['tests']} | {held} |")
    print()
    for name, value in measured.items():
        print(f"- {name}: {value}")
    if failures:
        print("\nFAILED:\n" + "\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
