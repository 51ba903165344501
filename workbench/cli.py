"""The `workbench` command line: set up a database, fill the demo, invite participants, serve the app.

Commands parse arguments, call the store and the analysis modules, and print; they hold no logic
of their own and no SQL. A `WorkbenchError` (bad input, something not found, ...) is printed as one
line naming what was wrong, with exit code 2. Anything else is a bug: the user sees one line saying
so (exit code 1), and the trace only with `--debug`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from . import config, errors
from .errors import Conflict, Unavailable, WorkbenchError
from .ids import public_id
from .store import DatabaseLocked, Store, is_snapshot, open_snapshot


class _Commands(TyperGroup):
    """Runs every command: turns a `WorkbenchError` into its one-line message and a bug into a short one."""

    debug = False  # set by --debug for the command being run

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):
            raise  # usage errors (an unknown option, a bad value), --help and typer.Exit are Typer's to report
        except WorkbenchError as exc:
            raise _fail(str(exc)) from None
        except Exception as exc:
            command = f"workbench {ctx.invoked_subcommand or ''}".strip()
            if _Commands.debug:  # the trace goes to stderr through the logging --debug configured
                message = errors.unexpected(exc, where=command)
            else:
                message = (f"{command} failed unexpectedly ({type(exc).__name__}): a bug, not your input."
                           " Run it again with --debug to see the trace, and include it if you report this.")
            typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None


app = typer.Typer(help="The Values Workbench: elicit values cards, build a moral graph, see where groups differ.",
                  no_args_is_help=True, add_completion=False, cls=_Commands,
                  pretty_exceptions_enable=False)  # never a trace (with locals) in front of a user


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="on an unexpected error, show its trace "
                                                 "(and log everything at DEBUG level)")] = False) -> None:
    _Commands.debug = debug
    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")

DbOption = Annotated[str | None, typer.Option("--db", help="DuckDB file or postgresql://... URL (default: $WORKBENCH_DB"
                                              " or data/workbench.duckdb)")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _store(db: str | None) -> Store:
    """The database for a command that writes; a file a running app holds fails at once, saying so."""
    if is_snapshot(config.db_path(db)):
        raise _fail(f"--db: {config.db_path(db)} is a snapshot, for analysis only (graph, groups, fit, export);"
                    " run this command on the database it was taken from")
    try:
        return Store(config.db_path(db))
    except DatabaseLocked as exc:
        from .serving import busy_message

        raise _fail(busy_message(exc, "write to it")) from None


@contextlib.contextmanager
def _reading(db: str | None, *, note: str = "analysis runs are not recorded") -> Iterator[tuple[Store, bool]]:
    """The database for a command that only reads: (store, live).

    `live` is False when a running app holds the file: then the store is a snapshot the app took
    just now (deleted afterwards), and nothing should be recorded in it. Fails at once, saying what
    to do, when the file is held by something that cannot take a snapshot.
    """
    path = config.db_path(db)
    if is_snapshot(path):  # a snapshot folder: analysed in memory, nothing written back
        with open_snapshot(path) as store:
            yield store, False
        return
    try:
        store = Store(path)
    except DatabaseLocked as exc:
        from .serving import snapshot_from_app

        try:
            snapshot = snapshot_from_app(exc)
        except Unavailable as refused:
            raise _fail(str(refused)) from None
        typer.echo(f"note: {path} is served by the workbench app; reading a snapshot it took just now"
                   f" ({note}).", err=True)
        try:
            with Store(snapshot) as store:
                yield store, False
        finally:
            shutil.rmtree(snapshot.parent, ignore_errors=True)
        return
    with store:
        yield store, True


@app.command()
def init(db: DbOption = None,
         deliberation: Annotated[Path | None, typer.Option(help="also load this deliberation YAML")] = None) -> None:
    """Create (or migrate) the database file."""
    from .deliberation import load_deliberation

    with _store(db) as store:
        typer.echo(f"database {store.name} at schema version {store.schema_version()}")
        if deliberation is not None:
            spec = load_deliberation(deliberation)
            store.save_deliberation(spec)
            typer.echo(f"deliberation {spec.id!r} loaded from {deliberation}")


@app.command()
def demo(db: DbOption = None,
         participants: Annotated[int, typer.Option(min=1, max=100_000, help="simulated participants")] = 300,
         seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 0,
         invites: Annotated[int, typer.Option(min=0, help="invite links to create and print")] = 3) -> None:
    """Load the demo deliberation and fill it with simulated participants from latent communities."""
    from .deliberation import load_deliberation
    from .demo import load_world, simulate

    spec = load_deliberation(config.DEMO_DELIBERATION)
    world = load_world(config.DATA / "demo_values.yaml")
    bundle = simulate(spec, world, participants, seed=seed)
    with _store(db) as store:
        added = store.import_bundle(bundle, merge=True)  # a second run adds nothing and keeps its settings
        typer.echo(f"demo deliberation {spec.id!r} in {store.name}: " +
                   ", ".join(f"{v} {k}" for k, v in added.items() if v))
        _print_invites(store.create_invites(spec.id, invites) if invites else [])


def _print_invites(pairs: list[tuple[int, str]]) -> None:
    for participant_id, token in pairs:  # invited participants are made here: their public id is p<number>
        typer.echo(f"  participant {public_id('participant', participant_id)}: {config.invite_link(token)}")


@app.command()
def invite(deliberation: Annotated[str, typer.Argument(help="deliberation id, e.g. demo")],
           n: Annotated[int, typer.Option("-n", "--count", min=1, max=10_000, help="how many invites")] = 1,
           db: DbOption = None,
           csv: Annotated[Path | None, typer.Option(help="also write participant_id,link to this CSV")] = None) -> None:
    """Create participant invite links (only a hash of each token is stored)."""
    with _store(db) as store:
        pairs = store.create_invites(deliberation, n)
    typer.echo(f"{len(pairs)} invite link(s) for {deliberation!r} (shown once; the database keeps only hashes):")
    _print_invites(pairs)
    if csv is not None:
        import pandas as pd

        pd.DataFrame([{"participant_id": public_id("participant", p), "link": config.invite_link(t)}
                      for p, t in pairs]).to_csv(csv, index=False)
        typer.echo(f"written to {csv}")


@app.command()
def serve(db: DbOption = None,
          port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8501,
          host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
          secrets: Annotated[Path | None, typer.Option(
              help="Streamlit secrets.toml (e.g. [auth] for single sign-on); default: .streamlit/secrets.toml"
                   " in the working directory")] = None,
          workers: Annotated[int | None, typer.Option(
              min=1, help="run this many app workers behind nginx (PostgreSQL only; README: Serving many"
                          " participants)")] = None) -> None:
    """Start the web app. This process becomes the server: Ctrl-C or SIGTERM stops it and frees the port
    and the database within seconds. Refuses to start on a database another process holds. With
    --workers N, N app workers run behind nginx on a PostgreSQL database."""
    from .serving import refuse_if_served, streamlit_command

    target = config.db_path(db)
    if secrets is not None and not secrets.is_file():
        raise _fail(f"--secrets: {secrets} is not a file")
    if workers is not None:
        from . import workers as fleet

        fleet.refuse_duckdb(target, workers)
        _refuse_busy_port(host, port)
        raise typer.Exit(fleet.serve(str(target), workers=workers, host=host, port=port,
                                     secrets_file=secrets and secrets.resolve()))
    if isinstance(target, Path):
        target = target.resolve()
        refuse_if_served(target)  # held by another process, or damaged: a WorkbenchError naming it
    else:
        Store(target).close()  # reachable, and migrated once before the server starts
    _refuse_busy_port(host, port)
    os.environ["WORKBENCH_DB"] = str(target)
    os.environ.setdefault("WORKBENCH_BASE_URL", f"http://{host}:{port}")
    command = streamlit_command(host=host, port=port, secrets_file=secrets and secrets.resolve())
    sys.stdout.flush()
    sys.stderr.flush()
    # Become Streamlit rather than wait for it: a signal meant for `workbench serve` then reaches the
    # server itself, and no child is left holding the port and the database.
    os.execv(command[0], command)


def _refuse_busy_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _fail(f"--port: {host}:{port} is already in use by another program; stop it or choose"
                            " another port (`workbench serve --port 8502`)") from None
            raise _fail(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror}") from None


@app.command()
def backup(db: DbOption = None,
           to: Annotated[Path | None, typer.Option("--to", help="the copy's file name, or a folder for it"
                                                   " (default: backups/NAME-TIME.duckdb beside the database)")]
           = None) -> None:
    """Write a verified copy of the database (while the app serves it, of a snapshot the app takes)."""
    from .store.durability import default_backup_path

    path = config.db_path(db)
    name = default_backup_path(path)  # named after the database, also when the copy is of a snapshot
    target = name if to is None else to / name.name if to.is_dir() else to
    with _reading(db, note="backing that up") as (store, _live):
        made = store.backup(target)
    typer.echo(f"backup of {path} written to {made.path} ({made.tables} tables, {made.rows} rows,"
               f" {made.size / 1e6:.1f} MB) and verified by reopening it")


@app.command()
def snapshot(to: Annotated[Path, typer.Option("--to", help="a new folder for the Parquet files and manifest.json")],
             db: DbOption = None) -> None:
    """Write the database's tables as Parquet for analysis (consistent as of one moment, while the app serves
    it; no credentials). Every analysis command (graph, groups, fit, export) reads the folder as --db."""
    with _reading(db, note="snapshotting that") as (store, _live):
        made = store.write_parquet_snapshot(to)
    typer.echo(f"snapshot of {made.source} (schema version {made.schema_version}) written to {to}:"
               f" {len(made.tables)} tables, {sum(made.tables.values())} rows. Analyse it with e.g."
               f" `workbench graph --db {to} --out graph.json`.")


@app.command()
def recover(db: DbOption = None) -> None:
    """Open a database whose write-ahead log is damaged, keeping every whole commit the log holds."""
    from .store.durability import recover as recover_logs

    path = config.db_path(db)
    if config.is_database_url(path):
        raise _fail("--db: recover mends a DuckDB file's write-ahead log; a PostgreSQL server recovers by itself")
    done = recover_logs(path)
    _store(db).close()  # replays what is left of the log and folds it into the file
    if not done:
        typer.echo(f"{path} opens cleanly: nothing to recover")
    for r in done:
        typer.echo(f"{r.log}: kept {r.kept_bytes} of {r.size} bytes (every whole commit before the damage);"
                   f" what came after is lost. The damaged log is kept as {r.copy}")


import_app = typer.Typer(help="Import data gathered elsewhere into a new deliberation, or with --merge into an existing"
                              " one (its settings unchanged; importing the same data twice adds nothing).",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")

DeliberationOption = Annotated[str | None, typer.Option("--deliberation", "-d",
                               help="deliberation id (default: the only one in the database)")]


MergeOption = Annotated[bool, typer.Option("--merge", help="add to the deliberation if it exists, keeping its"
                                           " settings (title, licence, source, open sign-up)")]


def _import(source: Path, deliberation_id: str, make_bundle, db: str | None, merge: bool) -> None:
    """Read `source` into a bundle (a format error exits with its message; nothing is written), then
    write it in one transaction and report what was new."""
    bundle = make_bundle()
    with _store(db) as store:
        try:
            added = store.import_bundle(bundle, merge=merge)
        except Conflict as exc:
            raise _fail(f"{exc}; nothing was imported. Add --merge to add this data to it without changing its"
                        " settings, or choose another id with --as") from None
    counts = ", ".join(f"{v} {k}" for k, v in added.items() if v) or "nothing new (already imported)"
    typer.echo(f"imported {source} {'into' if merge else 'as'} {deliberation_id!r}: {counts}")


def _slug(name: str, default: str) -> str:
    """A deliberation id from a file or folder name."""
    import re

    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:64] or default


@import_app.command("mge")
def import_mge(folder: Annotated[Path, typer.Argument(help="folder of the MGE study dump (JSON files)")],
               db: DbOption = None,
               as_id: Annotated[str, typer.Option("--as", help="deliberation id to import into")] = "mge-dft",
               merge: MergeOption = False) -> None:
    """Import the Moral Graph Elicitation study dump (cases, contexts, cards, canonical values, answers)."""
    from .io.mge import mge_bundle, read_mge_dump

    _import(folder, as_id, lambda: mge_bundle(read_mge_dump(folder), deliberation_id=as_id), db, merge)


@import_app.command("polis")
def import_polis(folder: Annotated[Path, typer.Argument(help="folder of a Polis export (comments.csv, votes.csv, ...)")],
                 db: DbOption = None,
                 as_id: Annotated[str | None, typer.Option("--as", help="deliberation id (default: folder name)")] = None,
                 merge: MergeOption = False) -> None:
    """Import a Polis conversation export: comments as statements, every vote, Polis's group ids."""
    from .io.polis import polis_bundle, read_polis_export

    deliberation_id = as_id or _slug(folder.resolve().name, "polis")
    _import(folder, deliberation_id, lambda: polis_bundle(read_polis_export(folder), deliberation_id=deliberation_id),
            db, merge)


@import_app.command("comparisons")
def import_comparisons(file: Annotated[Path, typer.Argument(help="CSV or Parquet: participant_id, item_a, item_b, "
                                                            "winner (a|b); optional context, prompt, weight, attr_*")],
                       db: DbOption = None,
                       as_id: Annotated[str | None, typer.Option("--as", help="deliberation id (default: file name)")]
                       = None, merge: MergeOption = False) -> None:
    """Import pairwise comparisons (a bad row stops the import with its row number; nothing is written)."""
    from .io.comparisons import comparisons_bundle

    deliberation_id = as_id or _slug(file.stem, "comparisons")
    _import(file, deliberation_id, lambda: comparisons_bundle(file, deliberation_id=deliberation_id), db, merge)


@app.command()
def graph(out: Annotated[Path, typer.Option("--out", help="where to write the graph (.json, or .graphml)")],
          db: DbOption = None, deliberation: DeliberationOption = None,
          mode: Annotated[str, typer.Option(help="mge (the study's published algorithm) or default")] = "default",
          context: Annotated[str | None, typer.Option(help="only this context")] = None,
          question: Annotated[str | None, typer.Option(help="only this question (id or slug)")] = None,
          until: Annotated[str | None, typer.Option(help="only answers created before this time")] = None,
          min_wiser: Annotated[int, typer.Option("--min-wiser", min=0, help="mge mode: edges need this many "
                                                 "'wiser' answers (0 disables)")] = 2) -> None:
    """Build the moral graph from the wiser-than answers and write it (published MGE JSON shape or GraphML)."""
    import json

    from . import analyses, moralgraph

    with _reading(db) as (store, live):
        did = analyses.resolve_deliberation(store, deliberation)
        qid = _question_id(did, question)
        result = analyses.moral_graph(store, did, mode=mode, until=until, context=context, question_id=qid,
                                      min_wiser=min_wiser, record=live)
    published = result.published
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".graphml":
        moralgraph.to_graphml(result.graph, out)
    else:
        out.write_text(json.dumps(published, indent=1, ensure_ascii=False))
    typer.echo(f"{mode} moral graph of {did!r}: {len(published['values'])} values, {len(published['edges'])} edges"
               f" -> {out}")


@app.command()
def dedup(db: DbOption = None, deliberation: DeliberationOption = None,
          per_question: Annotated[bool, typer.Option("--per-question/--across-questions",
                                                     help="cluster each question's cards apart")] = False,
          method: Annotated[str, typer.Option(help="'two-stage' (embedding candidates, then a merge decision on "
                                                   "what the cards attend to) or 'embedding' (the baseline)")]
          = "two-stage",
          threshold: Annotated[float | None, typer.Option(help="method 'embedding': cosine distance under which "
                                                          "cards merge (default 0.30)")] = None,
          model: Annotated[str | None, typer.Option(help="embedding model: 'minilm' (default), 'mpnet' (needs the "
                                                    "'.[mpnet]' extra) or a model folder; default "
                                                    "$WORKBENCH_EMBED_MODEL")] = None,
          llm: Annotated[bool, typer.Option("--llm/--no-llm", help="ask the configured LLM ($WORKBENCH_LLM_*) "
                                            "about the merges the workbench is least sure of")] = True,
          llm_pairs: Annotated[int, typer.Option(min=0, help="at most this many merges to ask the LLM about")] = 20,
          ) -> None:
    """Cluster similar values cards into canonical values (embeds only new or edited cards)."""
    from tqdm import tqdm

    from . import analyses

    if method not in ("two-stage", "embedding"):
        raise _fail(f"--method must be 'two-stage' or 'embedding', got {method!r}")
    with _store(db) as store:
        did = analyses.resolve_deliberation(store, deliberation)
        with tqdm(total=0, unit="card", desc="embedding", disable=None) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            run = analyses.deduplicate(store, did, per_question=per_question, method=method, model=model,
                                       distance_threshold=threshold, use_llm=llm, llm_pairs=llm_pairs,
                                       progress=progress)
    llm_note = ""
    if run.llm_asked:
        llm_note = f"; LLM judged {run.llm_answered} of {run.llm_asked} uncertain merges"
        if run.llm_error:
            llm_note += f" (then failed: {run.llm_error}; the rest decided without it)"
    typer.echo(f"{len(run.result.assignment)} cards of {did!r} -> {len(run.result.values)} canonical values"
               f" ({run.embedded} cards embedded, the rest cached{llm_note}; analysis run {run.run_id})")


@app.command()
def fit(out: Annotated[Path, typer.Option("--out", help="where to write the fit JSON (schemas/fit.schema.json)")],
        db: DbOption = None, deliberation: DeliberationOption = None,
        context: Annotated[str | None, typer.Option(help="only comparisons in this context")] = None,
        question: Annotated[str | None, typer.Option(help="only this question (id or slug): strengths compare "
                                                     "values within one question")] = None,
        by: Annotated[str | None, typer.Option(help="also fit per value of this participant attribute")] = None,
        latent: Annotated[str, typer.Option(help="'auto' (K by BIC) or a number of latent classes")] = "auto",
        max_k: Annotated[int, typer.Option("--max-k", min=1, max=20, help="largest K tried with --latent auto")] = 6,
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        no_wiser: Annotated[bool, typer.Option("--no-wiser", help="leave wiser-than answers out")] = False,
        bootstrap: Annotated[int, typer.Option(
            help="replicates over resampled participants for percentile intervals of the pooled and per-group"
                 " strengths (0 = Laplace intervals only; 200 is a good choice)")] = 0) -> None:
    """Fit Bradley–Terry strengths: pooled, per group (--by) and a latent-class mixture (K by BIC)."""
    import json

    from tqdm import tqdm

    from . import analyses

    if latent != "auto" and not latent.isdigit():
        raise _fail(f"--latent: must be 'auto' or a number of classes, got {latent!r}")
    if bootstrap == 1 or bootstrap < 0:
        raise _fail(f"--bootstrap: must be 0 (off) or at least 2 replicates, got {bootstrap}")
    with _reading(db) as (store, live):
        did = analyses.resolve_deliberation(store, deliberation)
        with tqdm(total=bootstrap, unit="replicate", desc="bootstrap", disable=None if bootstrap else True) as bar:
            result = analyses.fit_preferences(
                store, did, context=context, question_id=_question_id(did, question), by=by, latent=latent,
                max_k=max_k, seed=seed,
                include_wiser=not no_wiser, bootstrap=bootstrap, record=live,
                progress=lambda done, total: bar.update(done - bar.n)).json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    typer.echo(f"{result['k']} latent class(es) by BIC over {len(result['participants'])} participants and"
               f" {result['n_comparisons']} comparisons" + (f"; per-{by} strengths" if by else "")
               + (f"; bootstrap intervals from {bootstrap} replicates" if bootstrap else "") + f" -> {out}")


@app.command()
def export(what: Annotated[str, typer.Option("--what", help="questions, participants, canonical-values, cards, "
                                             "statements, wiser-answers, endorsements, comparisons, preference-pairs, "
                                             "interviews, graph, polis or all")],
           out: Annotated[Path, typer.Option("--out", help="the folder to write: the tables asked for, the tables "
                                             "their ids point to, and README.md")],
           fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl")] = "parquet",
           db: DbOption = None, deliberation: DeliberationOption = None,
           question: Annotated[str | None, typer.Option(help="only this question (id or slug)")] = None,
           until: Annotated[str | None, typer.Option(help="only data created before this time")] = None) -> None:
    """Export documented datasets (with a README.md datasheet) for researchers; every id in them resolves
    inside the export."""
    from . import analyses, exports

    with _reading(db) as (store, _live):
        did = analyses.resolve_deliberation(store, deliberation)
        files = exports.export(store, did, what, fmt, out, question_id=_question_id(did, question), until=until)
    for f in files:
        typer.echo(f"  {f.path}" + (f"  ({f.rows} rows)" if f.table != "datasheet" else "  (datasheet)"))


@app.command()
def report(out: Annotated[Path, typer.Option("--out", help="where to write the report (one self-contained .html file)")],
           db: DbOption = None, deliberation: DeliberationOption = None,
           until: Annotated[str | None, typer.Option(help="the report as of this time: only data collected before it"
                                                    " (e.g. 2023-10-18 or 2023-10-18T12:00:00Z)")] = None,
           by: Annotated[str | None, typer.Option(help="also compare the groups of this participant attribute"
                                                 " (e.g. political_leaning) besides the latent classes")] = None,
           seed: Annotated[int, typer.Option(help="random seed (same data and seed, same numbers)")] = 0,
           bootstrap: Annotated[int, typer.Option(min=0, max=2000, help="replicates for the strengths' intervals"
                                                  " (0 = Laplace intervals only)")] = 100,
           run: Annotated[int | None, typer.Option("--run", help="render a report stored earlier (its analysis run"
                                                   " id) instead of running the analyses again")] = None) -> None:
    """Write the deliberation report: participation, the moral graph, opinion groups, where groups disagree,
    the closing survey and methods, in one HTML file that opens offline (send it as it is)."""
    from tqdm import tqdm

    from . import analyses
    from . import report as reports

    if bootstrap == 1:
        raise _fail("--bootstrap: must be 0 (off) or at least 2 replicates, got 1")
    with _reading(db, note="the report's analysis runs are not kept") as (store, live):
        if run is not None:
            made = reports.stored_report(store, run)
        else:
            did = analyses.resolve_deliberation(store, deliberation)
            with tqdm(total=1000, desc="report", unit="‰", disable=None,
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
                made = reports.deliberation_report(store, did, until=until, by=by, seed=seed, bootstrap=bootstrap,
                                                   progress=lambda done, total: bar.update(done - bar.n))
    html = reports.render_html(made)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    kept = f"analysis run {made.run_id}" if live or run is not None else "not kept (read from a snapshot)"
    typer.echo(f"report on {made.deliberation_id!r} ({made.participation.participants} participants, "
               f"{made.graph.n_values} values in the graph, {made.groups.k} opinion groups, "
               f"{made.survey.respondents} survey respondents; {kept}) -> {out} ({len(html.encode()):,} bytes)")


def _question_id(deliberation_id: str, question: str | None) -> str | None:
    if question is None or "/" in question:
        return question
    return f"{deliberation_id}/{question}"


@app.command()
def groups(out: Annotated[Path, typer.Option("--out", help="CSV: participant_id, group")],
           db: DbOption = None, deliberation: DeliberationOption = None,
           question: Annotated[str | None, typer.Option(help="only this question (id or slug)")] = None,
           until: Annotated[str | None, typer.Option(help="only votes cast before this time")] = None,
           replay: Annotated[bool | None, typer.Option(
               "--replay/--single-shot", help="replay the vote history in Polis's update cadence (default when the"
               " votes carry their times), or run Polis's math once on the latest votes")] = None,
           report: Annotated[Path | None, typer.Option(
               "--report", help="also write Polis's report (representative statements per group, consensus,"
                                " group-informed consensus) as JSON (schemas/polis_report.schema.json)")] = None,
           seed: Annotated[int, typer.Option(help="random seed (Polis's first PCA start)")] = 0) -> None:
    """Find opinion groups from agree/disagree/pass votes (a port of Polis's math) and write one row per participant."""
    import json

    from tqdm import tqdm

    from . import analyses, exports

    with _reading(db) as (store, live):
        did = analyses.resolve_deliberation(store, deliberation)
        with tqdm(total=0, unit="update", desc="replaying votes", disable=None, leave=False) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            found = analyses.opinion_groups(store, did, question_id=_question_id(did, question), until=until,
                                            seed=seed, replay=replay, record=live, progress=progress)
        result, table = found.groups, found.table
        body = analyses.polis_report_json(store, did, result) if report is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    exports.write_csv(table, out)
    sizes = table[table["group"] >= 0]["group"].value_counts().sort_index()
    how = (f"replayed in {result.params['updates']} updates" if result.method == "replay"
           else "one update (no vote history)")
    typer.echo(f"{result.k} opinion groups in {did!r} ({', '.join(f'group {g}: {n}' for g, n in sizes.items())};"
               f" {int((table['group'] < 0).sum())} not in the conversation; {how}) -> {out}")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(body, indent=2, ensure_ascii=False))
        typer.echo(f"Polis's report -> {report}")


# -- the guided interview ---------------------------------------------------------------------

interview_app = typer.Typer(help="The guided interview, outside the app: check what it drafts.",
                            no_args_is_help=True)
app.add_typer(interview_app, name="interview")


@interview_app.command("draft")
def interview_draft(
    question: Annotated[str, typer.Option("--question", help="a question id of the database (demo/homework), "
                                          "or the text of any question")],
    response: Annotated[str, typer.Option("--response", help="how the participant thinks an assistant should answer")],
    story: Annotated[str, typer.Option("--story", help="the moment from their life they told")] = "",
    db: Annotated[Path | None, typer.Option("--db", help="also propose lines from confirmed cards of this "
                                            "question in this database (opened read-only)")] = None,
    suggestions: Annotated[bool, typer.Option("--suggestions", help="also print every suggestion with "
                                              "its reason")] = False,
) -> None:
    """Print the card the guided interview drafts, as JSON: {"title", "description", "policies": [...]}."""
    import json

    from . import analyses
    from .drafting import draft_card

    store = None
    try:
        if db is not None:
            if not db.exists():
                raise _fail(f"no database at {db}")
            store = Store(db, read_only=True)
        question_id, text = analyses.interview_question(store, question)
        others = analyses.others_cards(store, question_id) if store is not None and question_id else []
        draft = draft_card(text, response, story, others=others)
    finally:
        if store is not None:
            store.close()
    out = draft.to_dict()
    if suggestions:
        out["suggestions"] = [{"text": s.text, "source": s.source, "reason": s.reason,
                               "relevance": s.relevance} for s in draft.suggestions]
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


# -- staff accounts ---------------------------------------------------------------------------

user_app = typer.Typer(help="Staff accounts (facilitators, researchers) who sign in to the web app.",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")


class Role(StrEnum):
    facilitator = "facilitator"
    researcher = "researcher"


@user_app.command("add")
def user_add(username: Annotated[str, typer.Argument(help="sign-in name (stored in lower case)")],
             role: Annotated[Role, typer.Option("--role", help="what the account may see",
                                                case_sensitive=False)],
             password_stdin: Annotated[bool, typer.Option(
                 "--password-stdin", help="read the password from the first line of standard input")] = False,
             email: Annotated[str | None, typer.Option(
                 help="the email an OpenID Connect provider vouches for: lets the account use single sign-on")] = None,
             no_password: Annotated[bool, typer.Option(
                 "--no-password", help="single sign-on only (needs --email): no password can sign in")] = False,
             db: DbOption = None) -> None:
    """Create a staff account (the password is asked twice, or read from stdin; only its hash is stored)."""
    from .auth import MIN_PASSWORD_LENGTH, AccountError, create_user, normalise_email, normalise_username

    name = normalise_username(username)
    if email is not None:
        normalise_email(email)
    elif no_password:
        raise AccountError("--no-password: needs --email, or the account could never sign in")
    password = None if no_password else _read_password(password_stdin, MIN_PASSWORD_LENGTH)
    with _store(db) as store:
        create_user(store, name, role.value, password, email=email)
    typer.echo(f"user {name!r} ({role.value}) created" + (f", single sign-on as {email.strip().lower()}"
                                                          if email else ""))


@user_app.command("set-email")
def user_set_email(username: Annotated[str, typer.Argument(help="an existing account")],
                   email: Annotated[str, typer.Argument(help="the address its single sign-on identity carries;"
                                                        " 'none' removes it")],
                   db: DbOption = None) -> None:
    """Let an account sign in through the configured OpenID Connect provider as EMAIL."""
    from .auth import set_email

    address = None if email.strip().lower() == "none" else email
    with _store(db) as store:
        set_email(store, username, address)
    typer.echo(f"email of {username.strip().lower()!r} " + ("removed" if address is None else f"set to {email.strip().lower()}"))


@user_app.command("set-password")
def user_set_password(username: Annotated[str, typer.Argument(help="an existing account")],
                      password_stdin: Annotated[bool, typer.Option(
                          "--password-stdin",
                          help="read the password from the first line of standard input")] = False,
                      db: DbOption = None) -> None:
    """Give an account a new password (e.g. the demo accounts before real use)."""
    from .auth import MIN_PASSWORD_LENGTH, change_password

    password = _read_password(password_stdin, MIN_PASSWORD_LENGTH)
    with _store(db) as store:
        change_password(store, username, password)
    typer.echo(f"password of {username.strip().lower()!r} changed")


def _read_password(from_stdin: bool, min_length: int) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(f"Password (at least {min_length} characters)", hide_input=True,
                        confirmation_prompt=True)


@user_app.command("ensure-demo")
def user_ensure_demo(db: DbOption = None) -> None:
    """Create the demo accounts if missing: facilitator / demo-facilitator, researcher / demo-researcher.

    Existing accounts are left as they are. Change these passwords on any real deployment.
    """
    from .auth import ensure_demo_users

    with _store(db) as store:
        created = ensure_demo_users(store)
    if created:
        typer.echo(f"demo staff account(s) created: {', '.join(created)}"
                   " (change their passwords with `workbench user set-password` before real use)")
    else:
        typer.echo("demo staff accounts already exist")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
