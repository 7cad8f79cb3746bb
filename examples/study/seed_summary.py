#!/usr/bin/env python3
"""Summarises terse_study runs of several seeds as a Markdown table.

usage: seed_summary.py DIR [DIR ...]

Each DIR holds the results.csv of one terse_study run (one seed, one
partition, the same configurations). Accuracy, bytes, modelled time and
consensus distance are reported as mean ± sample standard deviation over
the seeds; the target of each seed is that seed's dense final accuracy
minus 0.5 points (as terse_study computes it), and the figures to the
target are averaged over the seeds that reached it (k/n says how many).
"""
import statistics
import sys

from study_tables import human_bytes, mean_sd, rows_by_config


def main(dirs):
    runs, order = rows_by_config(dirs, "results.csv")
    seeds = len(dirs)
    print("| configuration | knobs | final % | sent per rank | reached target | steps to target "
          "| sent to target | comm to target | comm @ 10 Gb/s | consensus distance (end) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for config in order:
        rows = runs[config]
        failed = [r for r in rows if r["failure"]]
        done = [r for r in rows if not r["failure"]]
        accuracy = [100 * float(r["final_accuracy"]) for r in done]
        sent = statistics.mean(float(r["bytes_sent_per_rank"]) for r in rows)
        hits = [r for r in done if r["steps_to_target"]]
        steps = [float(r["steps_to_target"]) for r in hits]
        to_target = [float(r["bytes_to_target"]) for r in hits]
        time_to_target = [float(r["comm_model_s_to_target"]) for r in hits]
        comm = [float(r["comm_model_s"]) for r in done]
        distance = [float(r["final_consensus_distance"]) for r in done]
        print(f"| {config} | {rows[0]['knobs']} | {mean_sd(accuracy, '{:.2f}')}"
              f"{f' ({len(failed)} of {seeds} diverged)' if failed else ''} | {human_bytes(sent)} "
              f"| {len(hits)}/{seeds} | {mean_sd(steps, '{:.0f}')} "
              f"| {human_bytes(statistics.mean(to_target)) if to_target else '—'} "
              f"| {mean_sd(time_to_target, '{:.2f}')}{' s' if time_to_target else ''} "
              f"| {mean_sd(comm, '{:.2f}')} s | {mean_sd(distance, '{:.2g}')} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
