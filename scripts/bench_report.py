#!/usr/bin/env python3
"""Turns Google Benchmark JSON into markdown: every throughput beside the
memcpy reference of the same size measured in the same run."""
import json
import re
import sys
from collections import defaultdict


def size_of(name):
    m = re.search(r"/(\d+)(/|$)", name)
    return int(m.group(1)) if m else None


def human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:g} {unit}"
        nbytes /= 1024


def report(path):
    data = json.load(open(path))
    runs = [b for b in data.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration"]
    reference = {}
    for b in runs:
        if "memcpy" in b["name"] and "bytes_per_second" in b:
            reference[size_of(b["name"])] = b["bytes_per_second"]
    rows = defaultdict(list)
    for b in runs:
        if "memcpy" in b["name"] or "bytes_per_second" not in b:
            continue
        family = re.sub(r"/\d+(/|$)", "/", b["name"]).split("/")[0]
        threads = re.search(r"threads:(\d+)", b["name"])
        label = family + (f" W={threads.group(1)}" if threads else "")
        rows[label].append(b)
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    ctx = data.get("context", {})
    print(f"\n### {name}\n\n{ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
          f"{ctx.get('date', '')}\n")
    print("| benchmark | size | GB/s | memcpy GB/s | ratio to memcpy |")
    print("|---|---:|---:|---:|---:|")
    for label, items in rows.items():
        for b in sorted(items, key=lambda b: size_of(b["name"]) or 0):
            size = size_of(b["name"])
            rate = b["bytes_per_second"] / 1e9
            ref = reference.get(size)
            ratio = f"{b['bytes_per_second'] / ref:.2f}" if ref else "-"
            ref_text = f"{ref / 1e9:.2f}" if ref else "-"
            print(f"| {label} | {human(size) if size else '-'} | {rate:.2f} | {ref_text} | {ratio} |")


for p in sys.argv[1:]:
    report(p)
