#!/usr/bin/env python3
"""Bytes to the target for configurations run in separate terse_study
invocations (--out directories), against the dense run of the same seed.

The target is dense's final accuracy - 0.5 points, as terse_study's own
report defines it; terse_study computes the saving only among the
configurations of one invocation, so a knob swept with --set (one
invocation per value) needs this script.

usage: bytes_to_target.py DENSE_DIR OTHER_DIR...
  e.g. bytes_to_target.py val/dense val/fda-sign-*"""
import csv, sys

def curves(d):
    rows = {}
    for r in csv.DictReader(open(d + '/curves.csv')):
        rows.setdefault(r['config'], []).append(r)
    return rows

def first_reaching(rows, target):
    for r in rows:
        if float(r['accuracy']) >= target:
            return r
    return None

dense = curves(sys.argv[1])['dense']
target = float(dense[-1]['accuracy']) - 0.005
dense_hit = first_reaching(dense, target)
print(f"target {100*target:.2f} %, dense final {100*float(dense[-1]['accuracy']):.2f} %, dense sent to target {float(dense_hit['bytes_sent_per_rank'])/1e9:.3f} GB")
for d in sys.argv[2:]:
    for name, rows in curves(d).items():
        if name == 'dense':
            continue
        hit = first_reaching(rows, target)
        final = 100 * float(rows[-1]['accuracy'])
        best = 100 * max(float(r['accuracy']) for r in rows)
        if hit:
            ratio = float(dense_hit['bytes_sent_per_rank']) / float(hit['bytes_sent_per_rank'])
            print(f"{d:28s} {name:18s} final {final:.2f} best {best:.2f} step {hit['step']:>5s} sent {float(hit['bytes_sent_per_rank'])/1e6:8.1f} MB saving {ratio:6.1f}x")
        else:
            print(f"{d:28s} {name:18s} final {final:.2f} best {best:.2f} target not reached")
