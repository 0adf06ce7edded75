"""The `attnad` command: parses options, calls the library, renders. No modelling logic here.

Exit codes: 0 success; 1 a detect gate (--fail-on-rate / -count / -invalid / -events / -drift /
-missing) was breached; 2 bad usage, config, input or model (one line on stderr); 3 an internal
error (a bug: please report it; --debug shows the traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from attnad import __version__
from attnad.cli_options import (BatchOpt, ConfigOpt, Data, DebugOpt, DeviceOpt, EngineOpt,
                                FailDriftOpt, FailMissingOpt,
                                ExplainOpt, KeepOpt, ModelOpt, OutOpt, QuietOpt, RayAddressOpt,
                                SeedOpt, SetOpt, SortedOpt)
from attnad.errors import UserError

EXIT_GATE, EXIT_USER, EXIT_INTERNAL = 1, 2, 3
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so every `finally` and `with` block runs
    and temporary outputs are removed before the process exits (the default SIGTERM action would
    kill it on the spot and leave them behind)."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not interrupt the clean-up
    raise Terminated()

app = typer.Typer(
    name="attnad",
    help="Batch anomaly detection on CSV and Parquet files with attention models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: typer's rich help labels every flag "<bool>"
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _stderr(quiet: bool = False) -> Console:
    return Console(stderr=True, quiet=quiet, highlight=False)


def _guard(fn, debug: bool):
    """Run a command body: user mistakes -> one line + exit 2, bugs -> exit 3."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show_warning
    try:
        return fn()
    except typer.Exit:
        raise
    except UserError as e:
        if debug:
            traceback.print_exc()
        print("error: " + " ".join(str(e).split("\n")), file=sys.stderr)  # always one line
        raise typer.Exit(EXIT_USER) from None
    except Terminated:
        print("terminated; files being written were discarded", file=sys.stderr)
        raise typer.Exit(EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        print("interrupted; files being written were discarded", file=sys.stderr)
        raise typer.Exit(130) from None
    except MemoryError:
        print("error: out of memory; lower --batch-size or train.max_rows", file=sys.stderr)
        raise typer.Exit(EXIT_INTERNAL) from None
    except Exception as e:  # noqa: BLE001 - the last line of defence for our own bugs
        if debug or os.environ.get("ATTNAD_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e}\nThis is a bug in attnad; please report "
              "it with the command you ran (add --debug for the traceback).", file=sys.stderr)
        raise typer.Exit(EXIT_INTERNAL) from None


def _load_config(config: Optional[Path], sets: Optional[list[str]], seed: Optional[int],
                 device: Optional[str]):
    from attnad.config import load_config, option_overrides
    return load_config(config, option_overrides(sets, seed, device))


def _fit(data: Path, cfg, console: Console, init_from: Optional[Path] = None, ddp=None,
         one_shot: bool = False):
    """The fitted detector and what fitting warned about (shown by the caller: `train` prints
    it, `detect` puts it in the summary and its JSON). `one_shot`: it will score `data`."""
    from attnad.detector import Detector
    from attnad.progress import step_progress, waiting
    from attnad.training import prefetch_fit_imports

    prefetch_fit_imports()
    with waiting(console, f"reading {data}"):
        table, note = Detector.read_training(data, cfg)
    if note:
        console.print(note)
    with step_progress(console, "training") as progress, \
            warnings.catch_warnings(record=True) as caught:
        det = Detector(cfg).fit(table, progress=progress, source=str(data), init_from=init_from,
                                ddp=ddp, one_shot=one_shot)
    return det, list(dict.fromkeys(f"{w.message}" for w in caught))


def _version(value: bool):
    if value:
        print(f"attnad {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Batch anomaly detection on CSV and Parquet files with attention models."""


@app.command()
def train(data: Data, output: Annotated[Path, typer.Option("--output", "-o", help="Model "
          "directory to write (replaced whole if it is an attnad model).", show_default=False)],
          config: ConfigOpt = None, set_: SetOpt = None, seed: SeedOpt = None,
          device: DeviceOpt = None,
          init_from: Annotated[Optional[Path], typer.Option(
              "--init-from", help="Fine-tune: start from this model directory's weights "
              "(same or overlapping columns; its model section is used).")] = None,
          distributed: Annotated[bool, typer.Option(
              "--distributed", help="DistributedDataParallel under torchrun (on by itself when "
              "torchrun starts several processes).")] = False,
          quiet: QuietOpt = False, debug: DebugOpt = False):
    """Train a model on DATA and save it to a model directory.

    Example: attnad train transactions.csv -c configs/tabular.yaml -o model/ --seed 0
    """
    console = _stderr(quiet)

    def body():
        from attnad.artifact import check_model_target
        from attnad.data.dataset import open_data
        cfg = _load_config(config, set_, seed, device)
        src = open_data(data)
        check_model_target(output)
        ddp = None
        from attnad.engines.distributed import running_under_torchrun
        if distributed or running_under_torchrun():
            if init_from is not None:
                raise UserError("--distributed with --init-from: fine-tune in one process")
            from attnad.engines.distributed import init
            ddp = init(cfg.train.device)
        if ddp is not None and ddp.rank != 0:
            _fit(src, cfg, _stderr(True), ddp=ddp)  # rank 0 says what fitting found
            ddp.finish()  # rank 0 saves the model once
            return
        det, said = _fit(src, cfg, console, init_from, ddp=ddp)
        for line in said:
            console.print(f"warning: {line}", markup=False)
        if ddp is not None:
            det.training_["world_size"] = ddp.world
        det.save(output)
        if ddp is not None:
            ddp.finish()
        tr = det.training_
        console.print(f"trained on {tr['rows']:,} rows in {tr['seconds']:.1f} s "
                      f"({tr['epochs']} epochs, {tr['steps']} steps, {tr['device']}); "
                      f"threshold {det.threshold_['value']:.4g}; model written to {output}")
    _guard(body, debug)


@app.command()
def score(data: Data, model: ModelOpt, output: OutOpt, keep: KeepOpt = None,
          batch_size: BatchOpt = None, set_: SetOpt = None, device: DeviceOpt = None,
          explain: ExplainOpt = 0, sorted_input: SortedOpt = False, engine: EngineOpt = "local",
          ray_address: RayAddressOpt = None, quiet: QuietOpt = False, debug: DebugOpt = False):
    """Write DATA's rows with an anomaly_score column (higher = more anomalous).

    Example: attnad score new.parquet -m model/ -o scored.parquet
    """
    console = _stderr(quiet)

    def body():
        from attnad.data.dataset import Files, open_data
        from attnad.detector import Detector
        from attnad.pipeline import check_output, score_data
        from attnad.pipeline.drift import drift_section, render_drift
        from attnad.progress import row_progress
        if engine not in ("local", "ray"):
            raise UserError(f"--engine {engine!r}: expected local or ray")
        src = open_data(data)
        if engine == "ray":
            if explain:
                raise UserError("--explain: not available with --engine ray yet; score with the "
                                "local engine")
            from attnad.engines.ray_engine import score_ray
            det = Detector.load(model, device="cpu").apply_overrides(set_ or [])
            n = score_ray(model, det, src, output, keep=keep, batch_size=batch_size,
                          address=ray_address, overrides=set_ or [])
            console.print(f"scored {n:,} rows with Ray -> {output}")
            return
        if not isinstance(src, Files):
            check_output(data, output)
        det = Detector.load(model, device=device or "auto").apply_overrides(set_ or [])
        with row_progress(console, src) as progress:
            stats = score_data(det, src, output, flags=False, sorted_input=sorted_input,
                               keep=keep, batch_size=batch_size, progress=progress,
                               explain=explain)
        for w in stats.warnings:
            console.print(f"warning: {w}", markup=False)
        if stats.invalid_cells:
            cells = ", ".join(f"{k}: {v:,}" for k, v in stats.invalid_cells.items())
            console.print(f"invalid cells (scored as missing): {cells}", markup=False)
        render_drift(drift_section(stats.drift), console)
        console.print(f"scored {stats.rows:,} rows -> {output}")
    _guard(body, debug)


@app.command()
def detect(
    data: Data, output: OutOpt,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model directory; "
                     "without it a model is fitted on DATA itself.")] = None,
    config: ConfigOpt = None, set_: SetOpt = None, seed: SeedOpt = None, device: DeviceOpt = None,
    threshold: Annotated[Optional[float], typer.Option(help="Flag scores above this value.")] = None,
    contamination: Annotated[Optional[float], typer.Option(
        help="Flag this share of rows as judged by the training scores (0 < R < 1).")] = None,
    fail_on_rate: Annotated[Optional[float], typer.Option(
        help="Exit 1 when the flagged share of rows exceeds R.")] = None,
    fail_on_count: Annotated[Optional[int], typer.Option(
        help="Exit 1 when more than N rows are flagged.")] = None,
    fail_on_invalid: Annotated[Optional[float], typer.Option(
        help="Exit 1 when more than this share of a model column's cells do not parse.")] = None,
    fail_on_drift: FailDriftOpt = None, fail_on_missing: FailMissingOpt = None,
    fail_on_events: Annotated[Optional[int], typer.Option(
        help="Time series: exit 1 when more than N events are found (0: any event).")] = None,
    events: Annotated[Optional[Path], typer.Option(
        "--events", help="Time series: also write one row per event (a run of flagged steps "
        "of one entity) to this .csv, .csv.gz or .parquet file.")] = None,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write the summary as JSON here.")] = None,
    save_model: Annotated[Optional[Path], typer.Option(
        help="Without -m: also save the model fitted on DATA to this directory.")] = None,
    keep: KeepOpt = None, batch_size: BatchOpt = None, explain: ExplainOpt = 0,
    report: Annotated[Optional[Path], typer.Option(
        help="Also write a self-contained HTML report here (see `attnad report`).")] = None,
    sorted_input: SortedOpt = False,
    quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Score DATA, flag anomalous rows, print a summary; exit 1 when a --fail-on gate is breached.

    Example: attnad detect today.csv -m model/ -o flagged.csv --fail-on-rate 0.05
    """
    console = _stderr(quiet)

    def body():
        from attnad.data.dataset import Files, open_data
        from attnad.detector import Detector
        from attnad.pipeline import check_output, score_data
        from attnad.progress import row_progress
        from attnad.pipeline.drift import check_drift_gates
        from attnad.summary import (breach_lines, build_summary, check_event_options,
                                    check_gates, evaluate_gates, render_summary,
                                    write_summary_json)
        from attnad.threshold import quantile_threshold

        if threshold is not None and contamination is not None:
            raise UserError("--threshold and --contamination: give one or the other")
        if contamination is not None and not 0 < contamination < 1:
            raise UserError(f"--contamination {contamination}: must be between 0 and 1")
        check_gates(fail_on_rate, fail_on_count, fail_on_invalid, fail_on_events)
        check_drift_gates(None, fail_on_drift, fail_on_missing)
        src = open_data(data)
        if not isinstance(src, Files):
            check_output(data, output)
        elif report is not None:
            raise UserError(f"--report: DATA {data} names several files; run `attnad report` "
                            "on one scored file")
        if summary_json is not None:
            check_output(data, summary_json, option="--summary-json", any_name=True)
            if summary_json.resolve() == output.resolve():
                raise UserError(f"--summary-json {summary_json}: is also -o; give another path")
        if report is not None:
            check_output(data, report, option="--report", any_name=True)
        if events is not None:
            check_output(data, events, option="--events")
            taken = [p for p in (output, summary_json, report) if p is not None]
            if any(events.resolve() == p.resolve() for p in taken):
                raise UserError(f"--events {events}: is also the path of another output; give "
                                "another path")
        if save_model is not None and model is None:
            from attnad.artifact import check_model_target
            check_model_target(save_model, option="--save-model")
        if model is not None:
            if config is not None or seed is not None or save_model is not None:
                raise UserError("-c/--seed/--save-model configure training; with -m the "
                                "model is already trained (drop them or drop -m)")
            det = Detector.load(model, device=device or "auto").apply_overrides(set_ or [])
            check_drift_gates(det, fail_on_drift, fail_on_missing)
            said = []
            check_event_options(det.ordered, events, fail_on_events, model)
        else:
            cfg = _load_config(config, set_, seed, device)
            check_event_options(bool(cfg.data.time_column), events, fail_on_events, None)
            if contamination is not None:
                cfg.threshold.contamination = contamination
            det, said = _fit(src, cfg, console, one_shot=True)
            if save_model is not None:
                det.save(save_model)
        t = threshold
        if contamination is not None:
            t = quantile_threshold(det.threshold_, contamination)
        with row_progress(console, src) as progress:
            stats = score_data(det, src, output, flags=True, threshold=t, keep=keep,
                               batch_size=batch_size, progress=progress,
                               sorted_input=sorted_input, explain=explain, events_file=events)
        stats.warnings[:0] = [w for w in said if w not in stats.warnings]
        gates = evaluate_gates(stats, fail_on_rate, fail_on_count, fail_on_invalid,
                               fail_on_events, fail_on_drift, fail_on_missing)
        summary = build_summary(stats, det, source=str(data), output=str(output), gates=gates)
        if summary_json is not None:
            write_summary_json(summary, summary_json)
        if report is not None:
            from attnad.report import write_html_report
            write_html_report(output, report, det, model or "(fitted on the input)", summary)
        render_summary(summary, console)
        breached = breach_lines(gates)
        for line in breached:  # also with --quiet: a cron mail must say why it failed
            print(line, file=sys.stderr)
        if breached:
            raise typer.Exit(EXIT_GATE)
    _guard(body, debug)


@app.command()
def explain(
    data: Data, model: ModelOpt,
    rows: Annotated[list[str], typer.Option(
        "--rows", help="Rows to explain: values of the model's first id column "
        "(data.id_columns), or 0-based row numbers with --index (repeatable).",
        show_default=False)],
    index: Annotated[bool, typer.Option("--index", help="--rows are 0-based row numbers.")] = False,
    set_: SetOpt = None, device: DeviceOpt = None, debug: DebugOpt = False,
):
    """Show, for chosen rows, each feature's share of the score and the attention the model paid.

    Example: attnad explain today.csv -m model/ --rows txn_17 --rows txn_42
    """
    def body():
        from attnad.data.io import check_input
        from attnad.detector import Detector
        from attnad.explain import explain_rows, render_explanations
        check_input(data)
        det = Detector.load(model, device=device or "auto").apply_overrides(set_ or [])
        expl = explain_rows(det, data, list(rows), by_index=index)
        render_explanations(expl, Console(highlight=False))
    _guard(body, debug)


@app.command("report")
def report_cmd(
    scored: Annotated[Path, typer.Argument(help="A file written by `attnad detect` or `score`.",
                                           show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.",
                                         show_default=False)],
    model: Annotated[Optional[Path], typer.Option(
        "--model", "-m", help="The model that scored it: adds the model card, the threshold "
        "and, for time series, the signal panels.")] = None,
    quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Write a self-contained HTML report (plots inline, no network) of a scored file.

    Example: attnad report flagged.parquet -m model/ -o report.html
    """
    console = _stderr(quiet)

    def body():
        from attnad.data.io import check_input
        from attnad.detector import Detector
        from attnad.report import check_report_output, write_html_report
        check_input(scored)
        check_report_output(output)
        det = Detector.load(model, device="cpu") if model is not None else None
        write_html_report(scored, output, det, model)
        console.print(f"report written to {output}")
    _guard(body, debug)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    app(prog_name="attnad")


if __name__ == "__main__":
    main()
