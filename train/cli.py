"""Command line: turn arguments into a RunConfig and call the engine, the same one the UI uses.

    python -m train vae --latent-dim 20 --epochs 40 --batch-size 128 --lr 1e-3 --device auto
    python -m train vae --resume RUN [--epochs 60]
    python -m train eval checkpoints/vae-z20.pt --k 1000
    python -m train submit [--backend ray --address URL] vae --epochs 40   (prints the run id)
    python -m train jobs [--backend ray]        python -m train stop RUN [--backend ray]

Exit status: 0 finished or stopped (SIGTERM), 1 failed or bad arguments, 3 diverged.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing

from genapp.config import ConfigError, TrainConfig, choices, coerce, field_help, option_name, option_value
from genapp.models import FAMILIES, RunConfig

EXIT_CODES = {"finished": 0, "stopped": 0, "failed": 1, "diverged": 3}


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type, title: str, defaults=None) -> None:
    """One option per field, ``latent_dim`` -> ``--latent-dim``; defaults from ``defaults`` or the dataclass."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    defaults = defaults if defaults is not None else cls()
    for f in dataclasses.fields(cls):
        allowed = choices(hints[f.name])
        text = field_help(f) or ""
        text += (" " if text else "") + f"default: {option_value(getattr(defaults, f.name))}"
        if typing.get_origin(hints[f.name]) is tuple:
            text += " (comma-separated)"
        group.add_argument(option_name(f.name), dest=f.name, default=None, choices=allowed,
                           metavar="{" + ",".join(allowed) + "}" if allowed else f.name.upper(),
                           help=text.replace("%", "%%"))


def dataclass_from_args(cls: type, args: argparse.Namespace, base=None):
    """Fields given on the command line override ``base`` (or the dataclass defaults)."""
    hints = typing.get_type_hints(cls)
    values = dataclasses.asdict(base) if base is not None else {}
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = coerce(hints[f.name], given, f.name)
    return cls(**values)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("local", "ray"), default=None,
                        help="where jobs run (default: $GENAPP_JOB_BACKEND, else local)")
    parser.add_argument("--address", default=None,
                        help="the Ray head's dashboard, e.g. http://127.0.0.1:8265 (default: $GENAPP_RAY_ADDRESS)")


def add_family_parsers(sub, verb: str = "train") -> None:
    for name, family in FAMILIES.items():
        p = sub.add_parser(name, help=f"{verb} a {name}", description=(family.__doc__ or "").strip().splitlines()[0])
        add_dataclass_options(p, family.Config, f"{name} model")
        add_dataclass_options(p, TrainConfig, "training", family.default_train_config())
        run = p.add_argument_group("run")
        run.add_argument("--runs-dir", default="runs", help="where run directories live (default: runs)")
        run.add_argument("--run-name", default=None, help="name of the new run (default: family-date-time-id)")
        run.add_argument("--resume", metavar="RUN", default=None,
                         help="continue RUN from its last checkpoint (only --epochs may change)")
        run.add_argument("--restart", action="store_true",
                         help="with --resume: start RUN over from step 0 when its last.pt is gone")
        run.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description="Train and evaluate genapp models headlessly.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_family_parsers(sub)
    s = sub.add_parser("submit", help="start a training job on a backend (this machine or a Ray cluster); "
                                      "prints the run id and returns")
    add_backend_options(s)
    add_family_parsers(s.add_subparsers(dest="family", required=True), verb="submit a job training")
    j = sub.add_parser("jobs", help="list the runs of a runs directory and their jobs' states")
    add_backend_options(j)
    j.add_argument("--runs-dir", default="runs")
    t = sub.add_parser("stop", help="stop a run's job: it checkpoints and ends as stopped")
    add_backend_options(t)
    t.add_argument("run")
    t.add_argument("--runs-dir", default="runs")
    e = sub.add_parser("eval", help="evaluate a checkpoint on the test set")
    e.add_argument("checkpoint")
    e.add_argument("--k", type=int, default=1000, help="importance samples for the VAE's IWAE bound (default 1000)")
    e.add_argument("--device", default="auto")
    e.add_argument("--data-dir", default="", help="directory of MNIST IDX files")
    e.add_argument("--limit", type=int, default=0, help="evaluate on the first N test images only (0 = all)")
    e.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    e.add_argument("--quality-samples", type=int, default=10_000,
                   help="samples scored by the classifier (0 = skip the sample-quality scores)")
    a = sub.add_parser("adopt", help="mark a run made by an older genapp (no .genapp-run marker) as a run")
    a.add_argument("run")
    a.add_argument("--runs-dir", default="runs")
    c = sub.add_parser("classifier", help="train the MNIST classifier that scores samples (checkpoints/classifier.pt)")
    c.add_argument("--epochs", type=int, default=12, choices=range(1, 201), metavar="1..200")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--output", default=None, help="default: checkpoints/classifier.pt")
    x = sub.add_parser("export", help="ship a run's best checkpoint to checkpoints/ with its measured figures")
    x.add_argument("run", help="name of a finished run")
    x.add_argument("--name", required=True, help="checkpoint name: checkpoints/NAME.pt")
    x.add_argument("--runs-dir", default="runs")
    x.add_argument("--k", type=int, default=1000, help="importance samples for the VAE's IWAE bound (default 1000)")
    x.add_argument("--data-dir", default="", help="directory of MNIST IDX files")
    x.add_argument("--quality-samples", type=int, default=10_000, help="samples scored by the classifier (0 = skip)")
    x.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    x.add_argument("--device", default="auto", help="where the test figures are measured (default: auto)")
    x.add_argument("--note", default="", help="a note recorded in the manifest entry (how and why it was made)")
    x.add_argument("--no-history", action="store_true",
                   help="ship the checkpoint alone, without checkpoints/history/NAME (the run's curves and pictures)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "eval":
            return run_eval(args)
        if args.command == "export":
            return run_export(args)
        if args.command == "classifier":
            return run_classifier(args)
        if args.command == "adopt":
            return run_adopt(args)
        if args.command in ("submit", "jobs", "stop"):
            return run_jobs_command(args)
        return run_train(args)
    except ConfigError as e:
        parser.exit(1, f"error: {e}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a clear one-line error for the things a user can cause
        from genapp.checkpoint import CheckpointError
        from genapp.data import DataError
        from genapp.runs import RunError, storage_message

        if isinstance(e, (CheckpointError, DataError, RunError, RuntimeError)):  # LaunchError too
            print(f"error: {e}", file=sys.stderr)
            return 1
        if isinstance(e, OSError):  # a full disk, an unwritable folder: what to do, not a traceback
            print(f"error: {storage_message(e)}", file=sys.stderr)
            return 1
        raise


def family_of(args: argparse.Namespace) -> str:
    """The family a training (``vae ...``) or submitting (``submit vae ...``) command line names."""
    return getattr(args, "family", None) or args.command


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig a training command line asks for. Raises ``ConfigError``."""
    family_name = family_of(args)
    family = FAMILIES[family_name]
    if args.run_name is not None:
        from genapp.runs import check_run_name

        check_run_name(args.run_name)
    return RunConfig(
        family=family_name,
        model=dataclass_from_args(family.Config, args),
        train=dataclass_from_args(TrainConfig, args, base=family.default_train_config()),
    )


def resume_epochs(args: argparse.Namespace) -> int | None:
    """The new epoch count of a ``--resume`` command line, the only option it may change. Raises
    ``ConfigError``."""
    family = FAMILIES[family_of(args)]
    given = [option_name(f.name) for cls in (family.Config, TrainConfig) for f in dataclasses.fields(cls)
             if f.name != "epochs" and getattr(args, f.name, None) is not None]
    if given:
        raise ConfigError(f"--resume continues a run with its own configuration; only --epochs may change "
                          f"(given: {', '.join(given)})")
    return coerce(int, args.epochs, "epochs") if args.epochs is not None else None


def run_jobs_command(args: argparse.Namespace) -> int:
    """``submit``, ``jobs`` and ``stop``: the app's job backends, from the command line."""
    from pathlib import Path

    from genapp.jobs import backend
    from genapp.runs import RunDir, check_runs_dir, list_runs, new_run_name

    jobs = backend(args.backend, args.address)
    runs_dir = check_runs_dir(args.runs_dir)
    if args.command == "submit":
        if args.resume:
            jobs.resume(RunDir.open(runs_dir, args.resume), epochs=resume_epochs(args), restart=args.restart)
            print(args.resume)
            return 0
        config = config_from_args(args)
        name = args.run_name or new_run_name(config.family)
        jobs.submit(config, runs_dir, name)
        print(name)
        return 0
    if args.command == "stop":
        jobs.stop(RunDir.open(runs_dir, args.run))
        print(f"stopping {args.run}: it saves a checkpoint and ends as stopped", file=sys.stderr)
        return 0
    names = [*jobs.list(runs_dir), *(run.name for run in list_runs(runs_dir))]
    print(f"{'run':<40} {'state':<34} {'where':<16} family")
    for name in dict.fromkeys(names):
        run = RunDir(Path(runs_dir) / name)
        state = jobs.status(run)
        family = run.family or ""
        print(f"{name:<40} {state.label:<34} {state.where or '-':<16} {family}")
    if jobs.name == "ray":
        print(jobs.summary(runs_dir), file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from genapp.jobs.backend import shared_runs_dir_error
    from genapp.training import resume, train
    from genapp.training.job import catch_sigterm_early
    from genapp.training.progress import ProgressBar

    catch_sigterm_early()  # a Stop while data loads or the step compiles still ends cleanly
    unseen = shared_runs_dir_error(args.runs_dir)
    if unseen == "cancelled":  # stopped while it waited in a cluster's queue: leave no trace
        print("stopped before it started: nothing trained", file=sys.stderr)
        return 0
    if unseen:  # a cluster's node without the shared runs directory: fail now, not train unseen
        print(f"error: {unseen}", file=sys.stderr)
        return 1

    callbacks = [] if args.no_progress else [ProgressBar()]
    if args.resume:
        epochs = resume_epochs(args)
        result = resume(args.runs_dir, args.resume, callbacks=callbacks, epochs=epochs, restart=args.restart)
    else:
        result = train(config_from_args(args), args.runs_dir, args.run_name, callbacks=callbacks)
    status = result.run.read_status()
    line = f"{result.state}: run {result.run.name} at step {result.step}"
    if status.get("error"):
        line += f" ({status['error']})"
    print(line, file=sys.stderr)
    print(f"metrics: {json.dumps(result.metrics)}", file=sys.stderr)
    return EXIT_CODES[result.state]


def check_evaluation_options(args: argparse.Namespace) -> None:
    """The measuring options of ``eval`` and ``export``, checked before anything is loaded."""
    if not 1 <= args.k <= 100_000:
        raise ConfigError(f"--k must be in 1..100000, got {args.k}")
    if not (args.quality_samples == 0 or 100 <= args.quality_samples <= 50_000):
        raise ConfigError(f"--quality-samples must be 0 (no scores) or in 100..50000, got {args.quality_samples}")
    if getattr(args, "limit", 0) < 0:
        raise ConfigError(f"--limit must be 0 (all) or more, got {args.limit}")


def run_eval(args: argparse.Namespace) -> int:
    check_evaluation_options(args)
    from genapp.checkpoint import load_model
    from genapp.devices import resolve_device
    from genapp.evaluation import evaluate

    model = load_model(args.checkpoint, device=resolve_device(args.device))
    start = time.perf_counter()
    figures = evaluate(model, data_dir=args.data_dir or None, k=args.k, limit=args.limit or None,
                       quality_samples=args.quality_samples)
    figures["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Copy best.pt to checkpoints/NAME.pt, measure it on the test set, record it in the manifest."""
    import shutil

    check_evaluation_options(args)
    from genapp import manifest
    from genapp.checkpoint import load_model, write_half_precision
    from genapp.devices import device_name, resolve_device
    from genapp.evaluation import evaluate
    from genapp.models import get_family
    from genapp.runs import RunDir, check_run_name
    from genapp.runs.export import export_history

    run = RunDir.open(args.runs_dir, args.run)
    name = check_run_name(args.name)  # one path component: the file stays inside checkpoints/
    status = run.read_status()
    if status.get("state") != "finished":
        print(f"error: run {args.run} is {status.get('state')}, not finished", file=sys.stderr)
        return 1
    if not run.best_checkpoint.is_file():
        print(f"error: run {args.run} has no checkpoints/best.pt to ship", file=sys.stderr)
        return 1
    config = run.read_config()
    target = manifest.CHECKPOINTS_DIR / f"{name}.pt"
    target.parent.mkdir(exist_ok=True)
    if args.half:
        write_half_precision(run.best_checkpoint, target)
    else:
        shutil.copyfile(run.best_checkpoint, target)
    device = resolve_device(args.device)
    model = load_model(target, device=device)
    start = time.perf_counter()
    figures = evaluate(model, data_dir=args.data_dir or None, k=args.k, quality_samples=args.quality_samples)
    eval_seconds = time.perf_counter() - start
    info = model.checkpoint_info
    history = {}
    if not args.no_history:
        family = get_family(config["family"])
        keep = [*family.seed_epochs, *config["train"].get("snapshot_epochs", ()), info["epoch"]]
        size = export_history(run, manifest.CHECKPOINTS_DIR / "history" / name, keep)
        history = {"history": f"history/{name}", "history_bytes": size}
    entry = {
        "file": target.name,
        "family": config["family"],
        "size_bytes": target.stat().st_size,
        "sha256": manifest.sha256(target),
        "run": args.run,
        "model_config": config["model"],
        "train_config": config["train"],
        "epoch": info["epoch"],
        "step": info["step"],
        "validation": info["metrics"],
        "test": {k: v for k, v in figures.items() if k not in ("family",)},
        "train_seconds": round(status.get("train_seconds") or status["updated"] - status["started"], 3),
        "device": status.get("device"),
        "device_name": status.get("device_name"),
        "threads": status.get("threads"),
        "command": f"{manifest.recorded_command(config, args.run)} && "
                   f"python -m train export {args.run} --name {name} --k {args.k}" + (" --half" if args.half else ""),
        "eval_command": f"python -m train eval checkpoints/{target.name} --k {args.k}",
        "eval_seconds": round(eval_seconds, 1),
        "eval_device": device_name(device),
        **history,
        **({"note": args.note} if args.note else {}),
    }
    manifest.write_entry(name, entry)
    print(json.dumps(entry, indent=2))
    return 0


def run_adopt(args: argparse.Namespace) -> int:
    """Give a run made before runs carried their marker the marker, once it reads as a genapp run:
    a config RunConfig accepts and a status with a known state."""
    import time

    from genapp.files import write_json
    from genapp.runs import RunDir

    run = RunDir.open(args.runs_dir, args.run)
    if run.exists():
        print(f"run {run.name} is a genapp run already", file=sys.stderr)
        return 0
    if not run.path.is_dir() or run.path.is_symlink():
        print(f"error: {run.path} is not a folder", file=sys.stderr)
        return 1
    RunConfig.from_dict(run.read_config())  # ConfigError or RunError: not a run genapp made
    if run.read_status()["state"] == "unknown":
        print(f"error: {run.path}: {run.read_status().get('error')}", file=sys.stderr)
        return 1
    write_json(run.marker_path, {"made_by": "genapp", "adopted": time.time()})
    print(f"run {run.name} adopted", file=sys.stderr)
    return 0


def run_classifier(args: argparse.Namespace) -> int:
    """Train the judge of sample quality and record its accuracy in the manifest."""
    from pathlib import Path

    import torch

    from genapp import manifest
    from genapp.devices import device_name
    from genapp.evaluation.classifier import ClassifierTraining, save_classifier, train_classifier

    settings = ClassifierTraining(epochs=args.epochs, seed=args.seed)
    model, figures = train_classifier(settings, log=lambda line: print(line, file=sys.stderr))
    target = Path(args.output) if args.output else manifest.CHECKPOINTS_DIR / "classifier.pt"
    save_classifier(model, target, figures)
    print(json.dumps(figures))
    if args.output is None:
        manifest.write_entry("classifier", {
            "file": target.name, "family": "classifier", "size_bytes": target.stat().st_size,
            "sha256": manifest.sha256(target), "test": figures, "train_seconds": figures["train_seconds"],
            "device": "cpu", "device_name": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
            "command": f"python -m train classifier --epochs {args.epochs} --seed {args.seed}",
        })
    return 0
