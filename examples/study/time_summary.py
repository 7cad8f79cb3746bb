#!/usr/bin/env python3
"""Summarises terse_study runs on a simulated cluster as a Markdown table.

usage: time_summary.py [--thresholds A,B,...] DIR [DIR ...]

Each DIR holds the time_to_accuracy.csv of one terse_study run under
smpirun with --declared-compute (one seed, the same configurations).
Accuracy, bytes and simulated seconds are reported as mean ± sample
standard deviation over the seeds; each seed's target is its dense final
accuracy minus 0.5 points (as terse_study computes it), and the figures to
the target are averaged over the seeds that reached it (k/n says how many).
The last column is dense's mean simulated time to the target over this
configuration's.

--thresholds 83,85 adds a second table from each DIR's
simulated_curves.csv: per configuration and fixed accuracy (percent), the
simulated seconds and bytes sent at the first evaluation at or above it,
mean ± sd over the seeds that reached it (k/n).
"""
import statistics
import sys

from study_tables import human_bytes, mean_sd, rows_by_config


def main(dirs):
    runs, order = rows_by_config(dirs, "time_to_accuracy.csv")
    seeds = len(dirs)
    targets = [100 * float(r["target_accuracy"]) for r in runs.get("dense", []) if r["target_accuracy"]]
    print(f"target (dense final − 0.5 points): {mean_sd(targets, '{:.2f}')} %\n")
    print("| configuration | final % | sent per rank | simulated s (whole run) | reached target "
          "| steps to target | sent to target | simulated s to target | faster than dense to target |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    dense_time = [float(r["simulated_s_to_target"]) for r in runs.get("dense", []) if r["simulated_s_to_target"]]
    for config in order:
        rows = runs[config]
        accuracy = [100 * float(r["final_accuracy"]) for r in rows]
        sent = statistics.mean(float(r["bytes_sent_per_rank"]) for r in rows)
        total = [float(r["simulated_s"]) for r in rows]
        hits = [r for r in rows if r["steps_to_target"]]
        steps = [float(r["steps_to_target"]) for r in hits]
        to_target = [float(r["bytes_to_target"]) for r in hits]
        time_to_target = [float(r["simulated_s_to_target"]) for r in hits]
        speedup = (f"{statistics.mean(dense_time) / statistics.mean(time_to_target):.2f}×"
                   if dense_time and time_to_target else "—")
        print(f"| {config} | {mean_sd(accuracy, '{:.2f}')} | {human_bytes(sent)} | {mean_sd(total, '{:.3f}')} "
              f"| {len(hits)}/{seeds} | {mean_sd(steps, '{:.0f}')} "
              f"| {human_bytes(statistics.mean(to_target)) if to_target else '—'} "
              f"| {mean_sd(time_to_target, '{:.3f}')} | {speedup} |")


def first_reaching(curve, percent):
    """The first evaluation of a curve at or above `percent`, or None."""
    for row in sorted(curve, key=lambda r: int(r["step"])):
        if 100 * float(row["accuracy"]) >= percent:
            return row
    return None


def thresholds_table(dirs, thresholds):
    curves, order = {}, []
    for d in dirs:
        runs, seen = rows_by_config([d], "simulated_curves.csv")
        for config in seen:
            if config not in curves:
                curves[config] = []
                order.append(config)
            curves[config].append(runs[config])
    header = " | ".join(f"s to {t:g} % | sent to {t:g} %" for t in thresholds)
    print(f"\n| configuration | {header} |")
    print("|---|" + "---:|---:|" * len(thresholds))
    for config in order:
        cells = []
        for t in thresholds:
            hits = [row for row in (first_reaching(c, t) for c in curves[config]) if row]
            seconds = [float(r["simulated_s"]) for r in hits]
            sent = [float(r["bytes_sent_per_rank"]) for r in hits]
            reached = f" ({len(hits)}/{len(curves[config])})" if len(hits) < len(curves[config]) else ""
            cells.append(f"{mean_sd(seconds, '{:.3f}')}{reached} | "
                         f"{human_bytes(statistics.mean(sent)) if sent else '—'}")
        print(f"| {config} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    args = sys.argv[1:]
    thresholds = []
    if args[:1] == ["--thresholds"] and len(args) > 1:
        thresholds = [float(t) for t in args[1].split(",")]
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    main(args)
    if thresholds:
        thresholds_table(args, thresholds)
