"""The ``labeler`` command: headless and scriptable, the same store and pipeline as the app."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from labeler.config import Settings
from labeler.install_paths import app_script, sample_data_dir
from labeler.workflow import export
from labeler.workflow.refresh import refresh
from labeler.workflow.report import describe, status_lines
from labeler.workflow.training import train
from labeler.workflow.workspace import Workspace


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    values: dict[str, object] = {"data_dir": Path(args.data_dir)}
    if getattr(args, "workspace", None):
        values["workspace_dir"] = Path(args.workspace)
    if getattr(args, "ground_truth", None):
        values["ground_truth_path"] = Path(args.ground_truth)
    if getattr(args, "device", None):
        values["device"] = args.device
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def _open(args: argparse.Namespace, **extra: object) -> Workspace:
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise SystemExit(f"labeler: data folder {data_dir} does not exist or is not a folder")
    return Workspace.open(_settings(args, **extra))


def _ensure_imported(ws: Workspace) -> None:
    if not ws.has_images():
        print(f"no images recorded yet: importing {ws.data_dir}", file=sys.stderr)
        for line in ws.import_folder().lines():
            print(line)


class _ProgressPrinter:
    """Prints progress at most twice a second (to stderr, so stdout stays scriptable)."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self._last > 0.5 or fraction >= 1.0:
            self._last = now
            print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- commands
def cmd_import(args: argparse.Namespace) -> int:
    ws = _open(args)
    report = ws.import_folder(labels_from_folders=args.labels_from_folders, progress=_ProgressPrinter())
    for line in report.lines():
        print(line)
    print(f"workspace: {ws.workspace_dir}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    csv_path = Path(args.csv)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
                print(f"labeler: {csv_path} needs the columns path,label", file=sys.stderr)
                return 2
            rows = [((row["path"] or "").strip().replace("\\", "/"), row["label"] or "") for row in reader]
    except OSError as error:
        print(f"labeler: cannot read {csv_path}: {error.strerror}", file=sys.stderr)
        return 2
    changed, problems = ws.store.label_paths(rows, annotator=args.annotator or ws.settings.annotator)
    for path, reason in problems:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{changed} labels stored, {len(rows) - len(problems) - changed} unchanged, {len(problems)} rows skipped")
    return 1 if problems and not changed and len(problems) == len(rows) else 0


def cmd_status(args: argparse.Namespace) -> int:
    ws = _open(args)
    for line in status_lines(ws):
        print(line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    frame = export.export_frame(ws, min_confidence=args.min_confidence)
    export.write_csv(frame, Path(args.output))
    counts = frame["source"].value_counts().to_dict()
    print(f"wrote {len(frame)} rows to {args.output}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    minutes = args.minutes if args.epochs is None else None
    result = train(ws, minutes=minutes, epochs=args.epochs, progress=_ProgressPrinter())
    print(result)
    return 0


def cmd_propagate(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    state = refresh(ws, progress=_ProgressPrinter(), compute_map=False)
    for line in describe(state):
        print(line)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    state = refresh(ws, progress=_ProgressPrinter(), compute_map=True)
    print(f"map computed for {len(state.label)} images with representation {state.representation}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from labeler.workflow.garbage import collect_garbage
    from labeler.workflow.representations import embed_on_ray, representations

    ws = _open(args)
    _ensure_imported(ws)
    if args.ray is None:
        for name, rep in representations(ws, progress=_ProgressPrinter()).items():
            print(f"{name}: {rep.X.shape[0]} images x {rep.X.shape[1]} dimensions")
    else:
        from labeler.embed.ray_embed import ImagesChanged, ray_available

        if not ray_available():
            print('labeler: --ray needs Ray: pip install "labeler[ray]"', file=sys.stderr)
            return 2
        try:
            written = embed_on_ray(ws, None if args.ray == "local" else args.ray, actors=args.actors,
                                   gpus_per_actor=args.gpus_per_actor, batch_size=args.batch_size,
                                   progress=_ProgressPrinter())
        except ImagesChanged as error:
            print(f"labeler: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
    collect_garbage(ws)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else sample_data_dir()
    if not data_dir.is_dir():
        print(f"labeler: data folder {data_dir} does not exist or is not a folder", file=sys.stderr)
        return 2
    app = app_script()
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--", "--data-dir", str(data_dir.resolve()),
    ]
    if args.workspace:
        command += ["--workspace", str(Path(args.workspace).resolve())]
    if args.ground_truth:
        command += ["--ground-truth", str(Path(args.ground_truth).resolve())]
    print(f"labeler: serving {data_dir} at http://{args.host}:{args.port}", flush=True)
    try:
        return subprocess.call(command, cwd=str(app.parent))
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labeler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, data_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if data_required:
            p.add_argument("data_dir", help="folder of images")
        p.add_argument("--workspace", help="workspace folder (default: DATA_DIR/.labeler)")
        return p

    p = add("import", "scan a folder of images: decode, cache, report unreadable files and duplicates")
    p.add_argument("--labels-from-folders", action="store_true", help="label each image by its parent folder")
    p.set_defaults(func=cmd_import)

    p = add("label", "add human labels from a CSV (columns path,label; paths relative to DATA_DIR)")
    p.add_argument("--csv", required=True)
    p.add_argument("--annotator", default=None)
    p.set_defaults(func=cmd_label)

    p = add("status", "images, labels, propagation and jobs of a workspace")
    p.set_defaults(func=cmd_status)

    p = add("export", "write the fully labeled CSV")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--min-confidence", type=float, default=None,
                   help="propagated rows below this keep their label but are flagged below-threshold")
    p.add_argument("--ground-truth", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_export)

    p = add("train", "train the SimCLR encoder on the folder's own images (resumable)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--minutes", type=float, default=5.0)
    group.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.set_defaults(func=cmd_train)

    p = add("propagate", "embed if needed, build the kNN graph and spread the human labels")
    p.add_argument("--ground-truth", help="teaching mode: CSV path,label with the true classes")
    p.set_defaults(func=cmd_propagate)

    p = add("map", "compute the 2-D UMAP map from the shared kNN graph")
    p.set_defaults(func=cmd_map)

    p = add("embed", "compute the representations (the trained encoder's on a Ray cluster with --ray)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help='Ray cluster address ("auto", "ray://head:10001"; "local" starts one here); '
                        'needs pip install "labeler[ray]"')
    p.add_argument("--actors", type=int, default=1, help="model replicas on the cluster (default 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs each replica reserves (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="images per model call (default 256)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.set_defaults(func=cmd_embed)

    p = add("app", "start the browser app (default: the bundled sample data)", data_required=False)
    p.add_argument("data_dir", nargs="?", default=None)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--ground-truth", help="teaching mode: CSV path,label with the true classes")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, PermissionError, ValueError) as error:
        print(f"labeler: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
