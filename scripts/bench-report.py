#!/usr/bin/env python3
"""Prints the table of BENCHMARKS.md from criterion's estimates (target/criterion)."""
import json, os, sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
SCENARIOS = ["no_origin", "allowed_simple", "disallowed_simple", "allowed_preflight",
             "rejected_preflight", "hostile_preflight", "origins_1", "origins_100",
             "origins_10000", "patterns_1", "patterns_1000"]

def median(group, fn):
    path = os.path.join(ROOT, group, fn, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None

def fmt(x):
    return "—" if x is None else f"{x:.0f}"

rows = []
print("| scenario | floor | corsair own | deciding, explained | tower-http own | actix-cors own | insert only own | static layer own | corsair / tower-http | corsair / insert | corsair / static layer |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
own = {}
for s in SCENARIOS:
    floor = median(s, "floor")
    if floor is None:
        continue
    c = median(s, "corsair") - floor
    t = median(s, "tower_http") - floor
    a = median(s, "actix_cors") - median(s, "actix_floor")
    i = median(s, "insert_only") - floor
    d = median(s, "corsair_decide") - median(s, "request_only")
    sl = median(s, "static_layer")
    sl = None if sl is None else sl - floor
    own[s] = c
    ratio_t = f"{c / t:.2f}" if t > 0 else "—"
    ratio_i = f"{c / i:.2f}" if i > 1 else "—"
    ratio_s = f"{c / sl:.2f}" if sl is not None and sl > 1 else "—"
    print(f"| {s} | {fmt(floor)} | {fmt(c)} | {fmt(d)} | {fmt(t)} | {fmt(a)} | {fmt(i)} | {fmt(sl)} | {ratio_t} | {ratio_i} | {ratio_s} |")
print()
print("All times are medians in nanoseconds; 'own' is the time with the middleware minus the floor.")
for s, base in [("origins_100", "origins_1"), ("origins_10000", "origins_1"), ("patterns_1000", "patterns_1")]:
    if s in own and base in own and own[base] > 0:
        print(f"- {s} / {base} (corsair own cost): {own[s] / own[base]:.2f}")
if "hostile_preflight" in own and "allowed_preflight" in own and own["allowed_preflight"] > 0:
    print(f"- hostile_preflight / allowed_preflight (corsair own cost): {own['hostile_preflight'] / own['allowed_preflight']:.2f}")

# actix-web: corsair's actix middleware beside actix-cors, each against actix's own floor.
print()
print("| scenario | actix floor | insert only own | actix-cors own | corsair own | corsair / actix-cors |")
print("|---|---:|---:|---:|---:|---:|")
for s in SCENARIOS:
    floor = median(s, "actix_floor")
    corsair = median(s, "actix_corsair")
    if floor is None or corsair is None:
        continue
    i = median(s, "actix_insert_only")
    i = None if i is None else i - floor
    a = median(s, "actix_cors") - floor
    c = corsair - floor
    ratio = f"{c / a:.2f}" if a > 1 else "—"
    print(f"| {s} | {fmt(floor)} | {fmt(i)} | {fmt(a)} | {fmt(c)} | {ratio} |")
