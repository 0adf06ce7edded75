#!/usr/bin/env python
"""Row-memory and combination variants on the tabular suite, without refitting the model.

The row memory (attnad.models.memory) is fitted after the reconstruction models and is one of
three score parts that are combined last, so a variant of either changes nothing else. `dump`
fits the default detector once per data set and protocol (the splits and `Detector.fit` of
benchmarks/accuracy.py) and saves what the parts need: the calibration rows' and scored rows'
part scores, every training row's vector, the scored rows' vectors and labels. `compare` then
rebuilds the memory part for each variant from the vectors, or combines the saved parts another
way, exactly as the detector would, and prints per-family mean AUROC / AUPRC per variant with
the leave-one-family-out check (the recombined default equals accuracy.py's attnad scores).

    python benchmarks/memory_variants.py dump --protocol U --seed 0 --dir DIR
    python benchmarks/memory_variants.py compare --dir DIR --protocol U --variants default \
        4096x2 tails --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy as acc  # noqa: E402  (the suite's splits, config and metrics)
from accuracy_compare import family, leave_one_family_out  # noqa: E402


# ---- dump --------------------------------------------------------------------------------------
def dump(args) -> None:
    import torch

    from attnad.detector import Detector
    from attnad.tabular.detector import CALIBRATION_ROWS

    data_dir = acc.resolve_data(args.data)
    args.protocols = [args.protocol]
    args.max_rows, args.top_categories = 50_000, 20
    args.attnad_set, args.threads = [], 1
    torch.set_num_threads(1)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    sets = [d for d in acc.load_manifest(data_dir) if d.get("kind") == "tabular"]
    sets = [d for d in sets if not args.only or d["name"] in args.only]
    seen = set()
    for ds in sets:
        name = ds["name"]
        if name in seen:
            continue
        seen.add(name)
        path = out / f"{name}.{args.protocol}.s{args.seed}.npz"
        if path.exists():
            continue
        fit_df, score_df, _ = acc.tabular_splits(ds, data_dir, args)[args.protocol]
        eval_df = fit_df if score_df is None else score_df
        cfg = acc.attnad_config(args, {"label_column": acc.LABEL})
        t0 = time.perf_counter()
        det = Detector(cfg).fit(fit_df, one_shot=score_df is None)
        fit_s = time.perf_counter() - t0
        enc_fit, _ = det.encode(fit_df)
        calib = enc_fit
        if len(enc_fit) > CALIBRATION_ROWS:  # the rows the fit calibrated on
            rng = np.random.default_rng(cfg.train.seed + 1)
            calib = enc_fit.take(np.sort(rng.choice(len(enc_fit), CALIBRATION_ROWS, replace=False)))
        t0 = time.perf_counter()
        enc_score = enc_fit if score_df is None else det.encode(eval_df)[0]
        score_parts = det._component_scores(enc_score)
        score_s = time.perf_counter() - t0
        calib_parts = score_parts if calib is enc_score else det._component_scores(calib)
        vec = det.preprocessor_.row_vectors
        arrays = {"y": eval_df[acc.LABEL].to_numpy().astype(np.int8), "fit_vectors": vec(enc_fit)}
        if score_df is not None:
            arrays["score_vectors"] = vec(enc_score)
        if calib is not enc_fit:
            arrays["calib_vectors"] = vec(calib)
        np.savez_compressed(
            path, **arrays, **{f"calib_{k}": v for k, v in calib_parts.items()},
            **{f"score_{k}": v for k, v in score_parts.items()},
            components=json.dumps(det.components_), fit_seconds=fit_s, score_seconds=score_s)
        print(f"{name} {args.protocol} s{args.seed}: fit {fit_s:.1f}s score {score_s:.1f}s", flush=True)


# ---- compare -----------------------------------------------------------------------------------
def load(path: Path) -> dict:
    z = np.load(path)
    d = {k: z[k] for k in z.files}
    d["components"] = json.loads(str(d["components"]))
    d["score_vectors"] = d.get("score_vectors", d["fit_vectors"])
    d["calib_vectors"] = d.get("calib_vectors", d["fit_vectors"])
    return d


def memory_energy(fit: np.ndarray, rows: list[np.ndarray], size: int, count: int, seed: int,
                  neighbour: int | None = None) -> list[np.ndarray]:
    import torch

    from attnad.models import memory
    from attnad.models.memory import RowMemory

    default = memory.NEIGHBOUR
    memory.NEIGHBOUR = neighbour or default
    try:
        mem = RowMemory.fit(torch.from_numpy(fit), size, count, seed)
    finally:
        memory.NEIGHBOUR = default
    return [mem.energy(torch.from_numpy(r)).numpy().astype(np.float64) for r in rows]


def recombine(d: dict, memory_parts: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> np.ndarray:
    """Scores with the memory component replaced by `memory_parts` (name -> (calib, score) raw
    scores, each standardised on the calibration rows and added with weight 1); None keeps the
    saved memory component."""
    from attnad.tabular.scorer import combine_components, fit_component_scale

    comps = {k: v for k, v in d["components"].items() if memory_parts is None or k != "memory"}
    calib = {k: d[f"calib_{k}"] for k in comps}
    score = {k: d[f"score_{k}"] for k in comps}
    for name, (c, s) in (memory_parts or {}).items():
        calib[name], score[name] = c, s
    comps = {k: {**fit_component_scale(calib[k]), "weight": d["components"].get(k, {}).get("weight", 1.0)}
             for k in calib}
    return combine_components(score, comps)


def tails_combination(d: dict) -> np.ndarray:
    """The saved components, each read as its surprise among the calibration rows' own scores
    (attnad.surprise.TermTails), summed: a label-free alternative to adding robust
    z-scores, where one heavy-tailed component can swamp the others at the top of the ranking."""
    from attnad.surprise import TermTails

    names = list(d["components"])
    tails = TermTails.fit(np.column_stack([d[f"calib_{k}"] for k in names]))
    return tails.surprise(np.column_stack([d[f"score_{k}"] for k in names])).sum(1)


def parse_variant(spec: str):
    """'default' (the saved memory), 'SIZExCOUNT' (one memory component), 'SIZExCOUNT+SIZExCOUNT'
    (two memory components, each standardised and added), 'sqrtK' (size K*sqrt(n) rows, at least
    256, memories enough for the default's 8,192 memory rows); a suffix 'kN' sets the neighbour
    whose distance is a memory's temperature (default 5); 'tails' keeps the memory and combines
    the components by tails_combination."""
    if spec == "default":
        return None
    return spec.split("+")


def variant_parts(d: dict, spec: list[str], seed: int) -> dict:
    n = len(d["fit_vectors"])
    parts = {}
    for i, one in enumerate(spec):
        one, _, k = one.partition("k")
        if one.startswith("sqrt"):
            size = int(max(256, min(n, round(float(one[4:]) * np.sqrt(n)))))
            count = max(1, 8192 // size)
        else:
            size, count = (int(v) for v in one.split("x"))
        calib, score = memory_energy(d["fit_vectors"], [d["calib_vectors"], d["score_vectors"]],
                                     size, count, seed, int(k) if k else None)
        parts["memory" if i == 0 else f"memory{i}"] = (calib, score)
    return parts


def compare(args) -> None:
    import torch

    torch.set_num_threads(1)
    files = sorted(f for d in args.dir for f in Path(d).glob(f"*.{args.protocol}.s{args.seed}.npz"))
    table = {}
    for path in files:
        name = path.name.split(f".{args.protocol}.")[0]
        d = load(path)
        y = d["y"]
        for spec in args.variants:
            parsed = parse_variant(spec)
            if spec == "tails":
                scores = tails_combination(d)
            else:
                scores = recombine(d, None if parsed is None else variant_parts(d, parsed, args.seed))
            table[(name, spec)] = (acc.auroc(y, scores), acc.auprc(y, scores))
        print(name, " ".join(f"{v}={table[(name, v)][0]:.3f}" for v in args.variants), flush=True)
    names = sorted({k[0] for k in table})
    fams = sorted({family(n) for n in names})
    out = {"protocol": args.protocol, "seed": args.seed, "variants": args.variants,
           "sets": {n: {v: table[(n, v)] for v in args.variants} for n in names}, "families": {}}
    print(f"\nprotocol {args.protocol} seed {args.seed}: mean AUROC / AUPRC")
    print("| family | sets | " + " | ".join(args.variants) + " |")
    for fam in fams + ["all"]:
        group = [n for n in names if fam == "all" or family(n) == fam]
        means = {v: (float(np.mean([table[(n, v)][0] for n in group])),
                     float(np.mean([table[(n, v)][1] for n in group]))) for v in args.variants}
        out["families"][fam] = means
        print(f"| {fam} | {len(group)} | " + " | ".join(f"{a:.4f} / {b:.4f}" for a, b in means.values()) + " |")
    lofo = leave_one_family_out({v: {n: table[(n, v)][0] for n in names} for v in args.variants},
                                args.variants[0])
    out["leave_one_family_out"] = lofo
    print(f"\nleave one family out (AUROC; default = {args.variants[0]}):")
    print("| held-out family | chosen on the others | its AUROC there | default's |")
    for fam, r in lofo.items():
        print(f"| {fam} | {r['chosen_on_others']} | {r['held_out']:.4f} | {r['default']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="fit the default once per set and save its components")
    d.add_argument("--data", default="../shared/data")
    d.add_argument("--protocol", choices=["U", "S"], required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--dir", required=True)
    d.add_argument("--only", nargs="+", default=None)
    c = sub.add_parser("compare", help="per-family accuracy of memory variants from a dump")
    c.add_argument("--dir", required=True, nargs="+", help="dump folders (pooled)")
    c.add_argument("--protocol", choices=["U", "S"], required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--variants", nargs="+", default=["default", "256x32"])
    c.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args(argv)
    if args.command == "dump":
        dump(args)
    else:
        compare(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
