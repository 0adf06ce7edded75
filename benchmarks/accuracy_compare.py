#!/usr/bin/env python
"""Compare attnad's accuracy between runs of `accuracy.py` (tables): before and after a change.

    python benchmarks/accuracy_compare.py --before s0=a.json s1=b.json --after s0=c.json \\
        s1=d.json --out benchmarks/results/accuracy_budget.md

Each `label=path` is an accuracy.py results JSON; several files may share a label (their
results are pooled, e.g. a full run and a run of the data sets it lacked). For every label and
protocol it prints attnad's mean AUROC and AUPRC over the data sets both sides have, overall and
per family (ADBench classical, embeddings of images, NSL-KDD), the count of data sets better,
worse and level (|difference| < 0.005), and the largest changes. Writes the tables as Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

LEVEL = 0.005  # AUROC differences below this count as level


def family(name: str) -> str:
    """A data set's family in the developer suite (and benchmarks/synthetic_tables.py's sets):
    what accuracy is judged by, so one family's many sets do not decide alone."""
    if name.startswith("synth_"):
        return f"synthetic {name.split('_')[1]}"
    if name.startswith("nsl_kdd"):
        return "NSL-KDD"
    if any(name.startswith(f"adbench_{p}") for p in ("mvtec", "cifar10", "svhn")):
        return "embeddings"
    if name.startswith("adbench_"):
        return "ADBench classical"
    prefix = name.split("_")[0]
    return {"nab": "NAB", "smd": "SMD", "asd": "ASD", "smap": "SMAP/MSL", "msl": "SMAP/MSL",
            "ucr": "UCR"}.get(prefix, prefix)


def leave_one_family_out(scores: dict[str, dict[str, float]], default: str) -> dict[str, dict]:
    """For each family: the candidate with the best mean of family means over the *other*
    families, and how it does on this one against `default`. scores: candidate -> {set: value}.
    A choice that only suits the family it was tuned on shows up as a loss here."""
    cands = sorted(scores)
    sets = sorted(set.intersection(*(set(v) for v in scores.values())))
    fams = sorted({family(s) for s in sets})

    def fam_mean(c, f):
        return mean(scores[c][s] for s in sets if family(s) == f)

    out = {}
    for held in fams:
        others = [f for f in fams if f != held]
        pick = max(cands, key=lambda c: (mean(fam_mean(c, f) for f in others), c == default))
        out[held] = {"chosen_on_others": pick, "held_out": fam_mean(pick, held),
                     "default": fam_mean(default, held),
                     "sets": sum(family(s) == held for s in sets)}
    return out


def load(specs: list[str]) -> dict[str, dict]:
    """label -> {(section, dataset): result} of attnad."""
    out: dict[str, dict] = defaultdict(dict)
    for spec in specs:
        label, _, path = spec.partition("=")
        p = Path(path)
        if p.is_dir():
            p = p / "accuracy_tabular.json"
        for r in json.loads(p.read_text())["results"]:
            if r["detector"] == "attnad" and r["section"].startswith("tabular") and \
                    r.get("auroc") is not None:
                out[label][(r["section"], r["dataset"])] = r
    return out


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def compare(before: dict, after: dict) -> tuple[list[str], dict]:
    lines, summary = [], {}
    for label in sorted(set(before) & set(after)):
        b, a = before[label], after[label]
        for section in ("tabular-U", "tabular-S"):
            keys = sorted(k for k in set(a) & set(b) if k[0] == section)
            if not keys:
                continue
            lines += [f"### {label}, {section}", "",
                      "| family | sets | AUROC before | after | AUPRC before | after | "
                      "better / worse / level |", "|---|---|---|---|---|---|---|"]
            groups = defaultdict(list)
            for k in keys:
                groups[family(k[1])].append(k)
            groups = {"all": keys, **dict(sorted(groups.items()))}
            for fam, ks in groups.items():
                d = [a[k]["auroc"] - b[k]["auroc"] for k in ks]
                row = {"sets": len(ks),
                       "auroc_before": mean(b[k]["auroc"] for k in ks),
                       "auroc_after": mean(a[k]["auroc"] for k in ks),
                       "auprc_before": mean(b[k]["auprc"] for k in ks),
                       "auprc_after": mean(a[k]["auprc"] for k in ks),
                       "better": sum(x >= LEVEL for x in d), "worse": sum(x <= -LEVEL for x in d),
                       "level": sum(abs(x) < LEVEL for x in d)}
                summary[f"{label} {section} {fam}"] = row
                name = f"**{fam}**" if fam == "all" else fam
                lines.append(f"| {name} | {row['sets']} | {row['auroc_before']:.4f} | "
                             f"{row['auroc_after']:.4f} | {row['auprc_before']:.4f} | "
                             f"{row['auprc_after']:.4f} | {row['better']} / {row['worse']} / "
                             f"{row['level']} |")
            moves = sorted(keys, key=lambda k: a[k]["auroc"] - b[k]["auroc"])
            worst = ", ".join(f"{k[1]} {b[k]['auroc']:.3f} -> {a[k]['auroc']:.3f}"
                              for k in moves[:3])
            best = ", ".join(f"{k[1]} {b[k]['auroc']:.3f} -> {a[k]['auroc']:.3f}"
                             for k in moves[::-1][:3])
            seconds = (sum(b[k]["seconds"] for k in keys), sum(a[k]["seconds"] for k in keys))
            lines += ["", f"Largest losses: {worst}. Largest gains: {best}. attnad seconds "
                      f"(fit and score, all sets): {seconds[0]:,.0f} before, {seconds[1]:,.0f} "
                      "after.", ""]
    return lines, summary


def write_report(text: str, summary: dict, out: Path | None) -> None:
    """Print the Markdown; with `out`, also write it there and the summary as JSON beside it."""
    print(text)
    if out:
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", nargs="+", required=True, metavar="LABEL=JSON")
    ap.add_argument("--after", nargs="+", required=True, metavar="LABEL=JSON")
    ap.add_argument("--title", default="attnad accuracy before and after")
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to write")
    args = ap.parse_args(argv)
    lines, summary = compare(load(args.before), load(args.after))
    if not lines:
        print("no label and protocol in common", file=sys.stderr)
        return 2
    write_report("\n".join([f"# {args.title}", ""] + lines), summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
