"""The ``labeler`` command: headless and scriptable, the same store and pipeline as the app."""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.auth import TOKEN_ENV, is_loopback, new_token
from labeler.config import FINETUNE_CHOICES, Settings
from labeler.store.classes import names_with_keys
from labeler.wording import counted

if TYPE_CHECKING:
    from labeler.store import ClassInfo
    from labeler.workflow.state import PipelineState
    from labeler.workflow.workspace import Workspace

# Only light modules above: `labeler --help`, an argument error and the light commands (import, label, undo) should
# not wait seconds for scikit-learn, SciPy and pandas, which the workflow modules import. Each command imports what
# it needs.

# Exit codes: 0 done; 1 the work failed or nothing to do it on (no readable image, undo refused); 2 bad input
# (missing folder, unreadable CSV, read-only workspace).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    values: dict[str, object] = {"data_dir": Path(args.data_dir)}
    if getattr(args, "workspace", None):
        values["workspace_dir"] = Path(args.workspace)
    if getattr(args, "ground_truth", None):
        values["ground_truth_path"] = Path(args.ground_truth)
    if getattr(args, "device", None):
        values["device"] = args.device
    if getattr(args, "finetune", None):
        values["finetune"] = args.finetune
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def _open(args: argparse.Namespace, **extra: object) -> Workspace:
    from labeler.workflow.workspace import Workspace

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise SystemExit(f"labeler: data folder {data_dir} does not exist or is not a folder")
    return Workspace.open(_settings(args, **extra))


def _ensure_imported(ws: Workspace) -> None:
    if not ws.has_images():
        print(f"no images recorded yet: importing {ws.data_dir}", file=sys.stderr)
        for line in ws.import_folder().lines():
            print(line)


def _no_readable_images(ws: Workspace) -> bool:
    """Print why and return True when the workspace has no readable image to work on."""
    if ws.records():
        return False
    unreadable = len(ws.store.images(status="unreadable"))
    detail = f" ({unreadable} unreadable files: see `labeler import`)" if unreadable else ""
    if not ws.store.images():
        detail = f" (nothing imported yet: run `labeler import {ws.data_dir}`)"
    print(f"labeler: no readable images in {ws.data_dir}{detail}", file=sys.stderr)
    return True


def _run_job(ws: Workspace, kind: str, function: Any) -> bool:
    """Run ``function(progress, should_stop)`` here, recorded as a job the app shows (and as interrupted if this
    process is killed). Prints the error and returns False when it fails."""
    from labeler.workflow.runner import JobRunner

    job = JobRunner(ws.settings).run_here(kind, function)
    if job.status != "done":
        print(f"labeler: {kind} {job.status}: {job.error or job.message}", file=sys.stderr)
        return False
    return True


class _ProgressPrinter:
    """Prints progress at most twice a second, and every new step (to stderr, so stdout stays scriptable)."""

    def __init__(self) -> None:
        self._last = 0.0
        self._step = ""

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        step = re.sub(r"[\d.,:]+", "", message)  # "epoch 3 · loss 4.1" and "epoch 4 · loss 3.9" are one step
        if now - self._last > 0.5 or fraction >= 1.0 or step != self._step:
            self._last, self._step = now, step
            print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- commands
def cmd_import(args: argparse.Namespace) -> int:
    ws = _open(args)
    report = ws.import_folder(labels_from_folders=args.labels_from_folders, progress=_ProgressPrinter())
    for line in report.lines():
        print(line)
    print(f"workspace: {ws.workspace_dir}")
    return 0


def _read_path_labels(csv_path: Path) -> list[tuple[str, str]] | None:
    """(path, label) rows of a CSV with the columns path,label (as `labeler export` writes them); None, said on
    stderr, when it cannot be read or lacks the columns."""
    from labeler.workflow.spreadsheet import restore_formula

    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
                print(f"labeler: {csv_path} needs the columns path,label", file=sys.stderr)
                return None
            return [
                (restore_formula((row["path"] or "").strip().replace("\\", "/")), restore_formula(row["label"] or ""))
                for row in reader
            ]
    except OSError as error:
        print(f"labeler: cannot read {csv_path}: {error.strerror}", file=sys.stderr)
        return None


def cmd_label(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    rows = _read_path_labels(Path(args.csv))
    if rows is None:
        return EXIT_BAD_INPUT
    before = len(ws.classes())
    report = ws.store.label_paths_report(rows, annotator=_cli_annotator(args, ws))
    changed, problems = report.changed, report.problems
    for path, reason in problems:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{changed} labels stored, {len(rows) - len(problems) - changed} unchanged, {len(problems)} rows skipped")
    _say_created(report.created, before, f"`labeler undo {ws.data_dir}` takes this batch back")
    return 1 if problems and not changed and len(problems) == len(rows) else 0


def _say_created(created: Sequence[ClassInfo], before: int, remedy: str) -> None:
    """Name the classes a command created, with their keys: a typo in a CSV makes a new class, and should not pass
    unseen among classes that existed already (``remedy``: what to do if it is one)."""
    if not created:
        return
    print(f"created {counted(len(created), 'new class', 'new classes')}: "
          + names_with_keys((c.name, c.hotkey) for c in created))
    if before:
        print(f"(not among the {before} classes before: if that is a typo, {remedy})")


def _cli_annotator(args: argparse.Namespace, ws: Workspace) -> str:
    """The CLI's own annotator (``USER#cli``), so undo in a browser tab never reverts a CLI batch."""
    return str(args.annotator or f"{ws.settings.annotator}#cli")


def cmd_undo(args: argparse.Namespace) -> int:
    from labeler.store import UndoConflict

    ws = _open(args)
    annotator = _cli_annotator(args, ws)
    try:
        action = ws.store.undo_action(annotator)
    except UndoConflict as conflict:
        print(f"labeler: {conflict}", file=sys.stderr)
        return EXIT_FAILED
    if action is None:
        print(f"nothing to undo: {annotator}")
        return 0
    print(f"reverted {len(action.image_ids)} labels of {annotator}'s last action")
    # A class made by a typo in the batch is empty now. It is not deleted here (an empty class can be one a person
    # made on purpose): say so, and where to delete it, instead of leaving it unseen.
    emptied = ws.store.empty_classes_first_used_in(action.batch)
    if emptied:
        one = len(emptied) == 1
        print(f"{len(emptied)} class{'' if one else 'es'} {'has' if one else 'have'} no label now (first labeled by "
              f"that batch): {names_with_keys((c.name, c.hotkey) for c in emptied)}; "
              f"{'it stays' if one else 'they stay'}; if made by mistake, delete {'it' if one else 'them'} in the "
              "app (Home, Edit or delete a class)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from labeler.workflow import label_queue
    from labeler.workflow.report import headline
    from labeler.workflow.spreadsheet import neutralise_formula
    from labeler.workflow.state import load_state

    ws = _open(args)
    state = load_state(ws)
    if state is None:
        print("labeler: nothing to audit yet: label a few images and run `labeler propagate` first", file=sys.stderr)
        return EXIT_FAILED
    if args.answers is None:
        rows = label_queue.audit_rows(ws, state, args.next)
        listing = [["path", "label"]] + [[neutralise_formula(state.paths[row]), ""] for row in rows]
        if args.output:
            with Path(args.output).open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(listing)
        else:
            csv.writer(sys.stdout).writerows(listing)
        print(f"{len(rows)} images to audit blind, in the random audit order: fill in the label of each (a class "
              "name; a class not on the list is fine), leave blank only what nobody could tell, then "
              "`labeler audit DIR --answers FILE`", file=sys.stderr)
        return 0
    answers = _read_path_labels(Path(args.answers))
    if answers is None:
        return EXIT_BAD_INPUT
    before = ws.classes()
    stored, problems = label_queue.answer_audits_by_path(ws, state, answers, _cli_annotator(args, ws))
    for path, reason in problems:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    blank = sum(1 for _, name in answers if not name.strip())
    print(f"{stored} audit answers stored, {len(problems)} rows skipped, {blank} left blank")
    known = {c.id for c in before}
    _say_created([c for c in ws.classes() if c.id not in known], len(before),
                 "it counts as a wrong answer against every label it was given for")
    print(f"accuracy: {headline(ws, state)['detail']}")  # the stored answers against the labels as they are
    if stored:
        print("run `labeler propagate` to calibrate the confidence with them")
    return 1 if problems and not stored else 0


def cmd_status(args: argparse.Namespace) -> int:
    from labeler.workflow.report import status_lines

    ws = _open(args)
    for line in status_lines(ws):
        print(line)
    return EXIT_FAILED if _no_readable_images(ws) else 0


def cmd_export(args: argparse.Namespace) -> int:
    from labeler.workflow import export
    from labeler.workflow.report import precision_above
    from labeler.workflow.state import lag_text, load_state, refresh_due

    ws = _open(args)
    _ensure_imported(ws)
    if _no_readable_images(ws):
        return EXIT_FAILED
    state = load_state(ws)
    if refresh_due(ws, state):
        # The fully labeled CSV is of the labels as they are: propagate first, as the app's refresh would, rather
        # than ship labels propagated from labels that were taken back or changed since (or refuse, and leave the
        # user one more command to run for the same result).
        if ws.store.read_only is not None:
            print(f"labeler: {export.out_of_date_read_only(ws, state)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"the propagation is out of date ({lag_text(ws, state)}): propagating first, as `labeler propagate` "
              "would", file=sys.stderr)
        state = _refresh_job(ws, compute_map=False)
        if state is None:
            return EXIT_FAILED
    frame = export.export_frame(ws, min_confidence=args.min_confidence, state=state)
    export.write_csv(frame, Path(args.output))
    counts = frame["source"].value_counts().to_dict()
    print(f"wrote {len(frame)} rows to {args.output}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.min_confidence is not None:
        kept = precision_above(ws, args.min_confidence)
        if kept is not None:
            print(kept["text"] + " Below it: flagged below-threshold.")
    removed = export.removed_files(ws)
    if removed:
        labeled = sum(1 for _, label in removed if label)
        print(f"left out: {counted(len(removed), 'file')} removed from the folder since the "
              f"import ({labeled} with a human "
              "label, kept in the workspace; they count again if the files come back): "
              + ", ".join(path for path, _ in removed[:5]) + (", ..." if len(removed) > 5 else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from labeler.workflow import training

    ws = _open(args)
    _ensure_imported(ws)
    if _no_readable_images(ws):
        return EXIT_FAILED
    running = [job for job in ws.store.jobs(kind="train", limit=5) if job.active]
    if running:
        print(f"labeler: training is already running (job {running[0].id}, process {running[0].owner_pid} on "
              f"{running[0].owner_host}); wait for it or cancel it in the app", file=sys.stderr)
        return EXIT_FAILED
    minutes = args.minutes if args.epochs is None else None
    printer = _ProgressPrinter()
    result: list[str] = []

    def job(progress: Any, should_stop: Any) -> str:
        def both(fraction: float, message: str) -> None:
            printer(fraction, message)
            progress(fraction, message)

        result.append(training.train(ws, minutes=minutes, epochs=args.epochs, progress=both, should_stop=should_stop))
        return result[-1]

    if not _run_job(ws, "train", job):
        return EXIT_FAILED
    print(result[-1])
    return 0


def _refresh_job(ws: Workspace, compute_map: bool) -> PipelineState | None:
    from labeler.workflow.refresh import refresh

    printer = _ProgressPrinter()
    states: list[PipelineState] = []

    def job(progress: Any, should_stop: Any) -> str:
        def both(fraction: float, message: str) -> None:
            printer(fraction, message)
            progress(fraction, message)

        states.append(refresh(ws, progress=both, compute_map=compute_map))
        return "labels propagated" + (" and map computed" if compute_map else "")

    return states[-1] if _run_job(ws, "refresh", job) else None


def cmd_propagate(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    if _no_readable_images(ws):
        return EXIT_FAILED
    from labeler.workflow.report import describe

    state = _refresh_job(ws, compute_map=False)
    if state is None:
        return EXIT_FAILED
    for line in describe(state, [audit["image_id"] for audit in ws.store.audits()]):
        print(line)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    ws = _open(args)
    _ensure_imported(ws)
    if _no_readable_images(ws):
        return EXIT_FAILED
    state = _refresh_job(ws, compute_map=True)
    if state is None:
        return EXIT_FAILED
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
    from labeler.install_paths import app_script, sample_data_dir, sample_photos_dir

    bundled = sample_photos_dir() if args.sample == "photos" else sample_data_dir()
    data_dir = Path(args.data_dir) if args.data_dir else bundled
    if not data_dir.is_dir():
        print(f"labeler: data folder {data_dir} does not exist or is not a folder", file=sys.stderr)
        return 2
    app = app_script()
    command = [
        sys.executable, "-c", _STREAMLIT_LAUNCHER, "run", str(app),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--", "--data-dir", str(data_dir.resolve()),
    ]
    if args.workspace:
        command += ["--workspace", str(Path(args.workspace).resolve())]
    if args.ground_truth:
        command += ["--ground-truth", str(Path(args.ground_truth).resolve())]
    if args.ray:
        command += ["--ray", args.ray.strip()]
    env = dict(os.environ)
    # Beyond loopback anyone on the network could reach the labels: a token is required unless --no-auth. A token
    # already in the environment is kept (a stable URL across restarts), also on loopback.
    token = None if args.no_auth else env.get(TOKEN_ENV) or (None if is_loopback(args.host) else new_token())
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = token
    print(f"labeler: serving {data_dir}", flush=True)
    for url in _app_urls(args.host, args.port, token):
        print(f"    {url}", flush=True)
    if not token and not is_loopback(args.host):
        print("labeler: --no-auth: anyone who can reach this address can read and change the labels", flush=True)
    return _run_forwarding_signals(command, cwd=str(app.parent), env=env)


# `python -m streamlit`, except that app.py's st.navigation picks every page from the first request on. Until some
# run has called st.navigation, Streamlit treats a pages/ folder beside the entry script as old-style pages and runs
# a page asked for by URL (/label) without app.py, and so without its access gate. (The attribute is Streamlit's;
# if it ever goes, the gate in pages/shared/session.py still keeps the labels closed.)
_STREAMLIT_LAUNCHER = """
import sys
try:
    from streamlit.runtime.pages_manager import PagesManager
    PagesManager.uses_pages_directory = False
except ImportError:
    pass
from streamlit.web.cli import main
main(prog_name="streamlit")
"""


def _app_urls(host: str, port: int, token: str | None) -> list[str]:
    query = f"/?token={token}" if token else ""
    hosts = [host] if host not in {"0.0.0.0", "::", ""} else [socket.gethostname(), "127.0.0.1"]
    return [f"http://{name}:{port}{query}" for name in hosts]


def _run_forwarding_signals(command: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run the server as a child and pass SIGINT/SIGTERM on to it, so `kill PID` (or Ctrl-C) on `labeler app`
    stops the server too instead of orphaning it."""
    child = subprocess.Popen(command, cwd=cwd, env=env)

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # a second Ctrl-C while waiting: keep waiting for the child to stop
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
    p.add_argument("--annotator", default=None, help="recorded with each label (default: USER#cli)")
    p.set_defaults(func=cmd_label)

    p = add("undo", "revert the last label action of an annotator (default: this user's CLI batches)")
    p.add_argument("--annotator", default=None, help="whose action to revert (default: USER#cli)")
    p.set_defaults(func=cmd_undo)

    p = add("audit", "blind audit: list the next images of the random audit order to answer, or store the answers "
                     "(kept apart from labels: never seeds)")
    p.add_argument("--next", type=int, default=20, help="how many images to list (default 20)")
    p.add_argument("-o", "--output", default=None, help="write the list to this CSV (default: standard output)")
    p.add_argument("--answers", default=None,
                   help="CSV path,label: your answers to listed images (blank label: passed over)")
    p.add_argument("--annotator", default=None, help="recorded with each answer (default: USER#cli)")
    p.set_defaults(func=cmd_audit)

    p = add("status", "images, labels, propagation, how good the labels are, whether to stop, and jobs")
    p.set_defaults(func=cmd_status)

    p = add("export", "write the fully labeled CSV")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--min-confidence", type=float, default=None,
                   help="propagated rows whose confidence (calibrated probability that the label is right) is below "
                   "this keep their label but are flagged below-threshold; prints the share right to expect above it, "
                   "with its 95%% interval")
    p.add_argument("--ground-truth", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_export)

    p = add("train", "train the SimCLR encoder on the folder's own images (resumable)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--minutes", type=float, default=5.0)
    group.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--finetune", choices=list(FINETUNE_CHOICES), default=None,
                   help="colour photos: also fine-tune the pretrained backbone's last stages with SimCLR (auto: only "
                   "on a GPU; always: on the CPU too, slowly; never)")
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
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: loopback only); beyond loopback a token is required")
    p.add_argument("--no-auth", action="store_true",
                   help=f"serve without an access token even beyond loopback (else one is generated, or taken "
                        f"from {TOKEN_ENV}, and printed in the URL)")
    p.add_argument("--ground-truth", help="teaching mode: CSV path,label with the true classes")
    p.add_argument("--sample", choices=["clothes", "photos"], default="clothes",
                   help="without DATA_DIR: the bundled sample to open (1,000 Fashion-MNIST images, or 120 photos "
                        "of cats and dogs)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help='Ray cluster for the models\' embeddings (after an import and after training; "auto", '
                        '"ray://head:10001", "local" starts one here); default this machine; needs pip install '
                        '"labeler[ray]"')
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LookupError as error:
        print(f"labeler: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as error:  # bad values, said in words; no readable image to work on
        refresh = sys.modules.get("labeler.workflow.refresh")  # imported, by the command, if it can have raised it
        print(f"labeler: {error}", file=sys.stderr)
        return EXIT_FAILED if refresh is not None and isinstance(error, refresh.NoReadableImages) else EXIT_BAD_INPUT
    except OSError as error:  # missing or read-only folders, disk full: said in words
        print(f"labeler: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
