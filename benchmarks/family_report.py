#!/usr/bin/env python
"""attnad against the baselines per family, before and after a change, over seeds: the tables
an accuracy issue closes with.

    python benchmarks/family_report.py --section timeseries \\
        --before s0=old0.json s1=old1.json --after s0=new0.json s1=new1.json \\
        --baselines s0=old0.json s1=old1.json --out benchmarks/results/families_timeseries.md

Every file is a `benchmarks/accuracy.py` results JSON; `--before` and `--after` give attnad's
results (the baselines in them are ignored), `--baselines` the other detectors' (attnad's there
is ignored). Per seed and section it writes, per family (accuracy_compare.family): the mean
AUROC and AUPRC of attnad before, after, and each baseline; attnad's mean rank by AUROC among
the detectors, before and after (1 = best, ties shared); attnad's fit and score seconds; then
the leave-one-family-out check of the before/after choice and the sets where a baseline still
beats attnad by more than LOSS AUROC. Writes Markdown and a JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_compare import family, leave_one_family_out, mean, write_report  # noqa: E402

LOSS = 0.05  # AUROC by which a baseline must beat attnad on a set to be listed


def results(spec: str, section: str) -> tuple[str, dict]:
    label, _, path = spec.partition("=")
    rows = defaultdict(dict)
    for p in path.split(","):
        for r in json.loads(Path(p).read_text())["results"]:
            if r["section"] == section and r.get("auroc") is not None:
                rows[r["detector"]][r["dataset"]] = r
    return label, rows


def ranks(table: dict[str, dict], sets: list[str]) -> dict[str, float]:
    """Mean rank of each detector by AUROC over `sets` (1 = best, ties share the mean rank)."""
    total = defaultdict(float)
    for s in sets:
        vals = {d: t[s]["auroc"] for d, t in table.items()}
        for d, v in vals.items():
            above = sum(x > v for x in vals.values())
            tied = sum(x == v for x in vals.values())
            total[d] += above + (tied + 1) / 2
    return {d: total[d] / len(sets) for d in table}


def seed_report(label: str, before: dict, after: dict, base: dict) -> tuple[list[str], dict]:
    detectors = sorted(d for d in base if d != "attnad")
    sets = sorted(set(before["attnad"]) & set(after["attnad"])
                  & set.intersection(*(set(base[d]) for d in detectors)))
    fams = defaultdict(list)
    for s in sets:
        fams[family(s)].append(s)
    groups = {"all": sets, **dict(sorted(fams.items()))}
    cols = ["attnad before", "attnad after"] + detectors
    lines = [f"### {label}", "",
             "Mean AUROC / AUPRC; rank = mean rank by AUROC among attnad and the "
             f"{len(detectors)} baselines (1 = best; the best baseline's rank is beside attnad's "
             "after); seconds = attnad's mean per set.",
             "", "| family | sets | " + " | ".join(cols) + " | rank before | rank after | "
             "best baseline's rank | seconds before / after (fit + score; fit) |",
             "|---|---|" + "---|" * (len(cols) + 4)]
    summary = {}
    for fam, ss in groups.items():
        tables = {"attnad before": before["attnad"], "attnad after": after["attnad"],
                  **{d: base[d] for d in detectors}}
        means = {c: (mean(tables[c][s]["auroc"] for s in ss),
                     mean(tables[c][s]["auprc"] for s in ss)) for c in cols}
        r_before = ranks({"attnad": before["attnad"], **{d: base[d] for d in detectors}}, ss)
        r_after = ranks({"attnad": after["attnad"], **{d: base[d] for d in detectors}}, ss)

        def secs(t) -> str:
            total = f"{mean(t[s]['seconds'] for s in ss):.1f}"
            fits = [t[s].get("fit_seconds") for s in ss]
            return total if None in fits else f"{total}; {mean(fits):.1f}"

        best = max(m[0] for m in means.values())
        cells = [f"**{a:.3f}** / {b:.3f}" if a == best else f"{a:.3f} / {b:.3f}"
                 for a, b in means.values()]
        name = f"**{fam}**" if fam == "all" else fam
        lines.append(f"| {name} | {len(ss)} | " + " | ".join(cells) +
                     f" | {r_before['attnad']:.2f} | {r_after['attnad']:.2f} | "
                     f"{min(r_after[d] for d in detectors):.2f} "
                     f"({min(detectors, key=lambda d: r_after[d])}) | "
                     f"{secs(before['attnad'])} / {secs(after['attnad'])} |")
        summary[fam] = {"sets": len(ss), "means": means, "rank_before": r_before["attnad"],
                        "rank_after": r_after["attnad"],
                        "baseline_ranks_after": {d: r_after[d] for d in detectors}}
    lofo = leave_one_family_out({"before": {s: before["attnad"][s]["auroc"] for s in sets},
                                 "after": {s: after["attnad"][s]["auroc"] for s in sets}},
                                "after")
    lines += ["", "Leave one family out: before or after, chosen by the mean of the other "
              "families' mean AUROC, and what that choice gives on the held-out family.", "",
              "| held-out family | chosen on the others | AUROC there | after's |",
              "|---|---|---|---|"]
    lines += [f"| {f} | {r['chosen_on_others']} | {r['held_out']:.3f} | {r['default']:.3f} |"
              for f, r in lofo.items()]
    losses = []
    for s in sets:
        a = after["attnad"][s]["auroc"]
        top = max(detectors, key=lambda d: base[d][s]["auroc"])
        if base[top][s]["auroc"] > a + LOSS:
            losses.append(f"{s} ({family(s)}): attnad {a:.3f}, {top} {base[top][s]['auroc']:.3f}")
    lines += ["", f"Sets where a baseline beats attnad (after) by more than {LOSS} AUROC: "
              + ("; ".join(losses) if losses else "none") + ".", ""]
    return lines, {"families": summary, "leave_one_family_out": lofo, "losses": losses}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", required=True, choices=["tabular-U", "tabular-S", "timeseries"])
    ap.add_argument("--before", nargs="+", required=True, metavar="SEED=JSON[,JSON]")
    ap.add_argument("--after", nargs="+", required=True, metavar="SEED=JSON[,JSON]")
    ap.add_argument("--baselines", nargs="+", required=True, metavar="SEED=JSON[,JSON]")
    ap.add_argument("--title", default=None)
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to write (and .json)")
    args = ap.parse_args(argv)
    before = dict(results(s, args.section) for s in args.before)
    after = dict(results(s, args.section) for s in args.after)
    base = dict(results(s, args.section) for s in args.baselines)
    lines = [f"## {args.title or args.section}", ""]
    summary = {}
    for label in sorted(set(before) & set(after) & set(base)):
        more, summary[label] = seed_report(label, before[label], after[label], base[label])
        lines += more
    write_report("\n".join(lines), summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
