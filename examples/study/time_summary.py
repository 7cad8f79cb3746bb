#!/usr/bin/env python3
"""Summarises terse_study runs on a simulated cluster as a Markdown table.

usage: time_summary.py DIR [DIR ...]

Each DIR holds the time_to_accuracy.csv of one terse_study run under
smpirun with --declared-compute (one seed, the same configurations).
Accuracy, bytes and simulated seconds are reported as mean ± sample
standard deviation over the seeds; each seed's target is its dense final
accuracy minus 0.5 points (as terse_study computes it), and the figures to
the target are averaged over the seeds that reached it (k/n says how many).
The last column is dense's mean simulated time to the target over this
configuration's.
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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
