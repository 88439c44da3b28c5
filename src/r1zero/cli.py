"""The ``r1zero`` command line: train, data, eval, score, report, bench, tiny."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="Reproduce DeepSeek R1-Zero on Countdown: GRPO with rule-based rewards.",
)
err = Console(stderr=True)


def _fail(msg: str) -> None:
    err.print(f"[red]error[/]: {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def train(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Argument(help="YAML config (TRL GRPOConfig / ModelConfig keys).")
    ] = None,
) -> None:
    """Run GRPO. CONFIG.yaml is optional; --key value overrides any key. No model: the embedded tiny one."""
    from r1zero.config import ConfigError, help_rows, load_config

    args = list(ctx.args)
    if config in ("--help", "-h") or "--help" in args or "-h" in args:
        table = Table(title="r1zero train [CONFIG.yaml] [--key value ...]", show_lines=False)
        for col in ("section", "key", "default", "effect"):
            table.add_column(col, overflow="fold")
        for row in help_rows():
            table.add_row(*row)
        Console(width=max(Console().width, 160)).print(table)
        return
    if config is not None and config.startswith("--"):
        args, config = [config, *args], None
    try:
        cfg = load_config(config, args)
        from r1zero.train.loop import train as run_train

        run_train(cfg)
    except ConfigError as e:
        _fail(str(e))
    except Exception as e:  # one line for known user errors, a traceback for bugs
        from r1zero.task.data import DataError
        from r1zero.train.checkpoint import CheckpointError

        if isinstance(e, DataError | CheckpointError):
            _fail(str(e))
        raise


@app.command()
def data(
    n: Annotated[int, typer.Option(help="Problems to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Write rows (nums, target) as JSONL here.")
    ] = None,
    inspect: Annotated[
        str | None,
        typer.Option(
            help="Show a few rows of this dataset (path or hub id) with rendered prompts."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows to show with --inspect.")] = 3,
    model: Annotated[
        str | None,
        typer.Option(
            help="Tokenizer whose chat template renders prompts (default: the tiny model)."
        ),
    ] = None,
    template: Annotated[str, typer.Option(help="Prompt template: zh, en or short.")] = "zh",
    min_nums: int = 3,
    max_nums: int = 4,
    max_number: int = 100,
    max_target: int = 100,
    skip_malformed: Annotated[
        bool, typer.Option(help="Skip malformed rows instead of failing.")
    ] = False,
) -> None:
    """Make seeded, solvable Countdown data, or inspect a dataset with its rendered prompts."""
    from r1zero.task import data as task_data

    try:
        if inspect is not None:
            _inspect(inspect, rows, model, template, skip_malformed)
            return
        made = task_data.generate_rows(
            n,
            seed,
            min_nums=min_nums,
            max_nums=max_nums,
            max_number=max_number,
            max_target=max_target,
        )
        if out is None:
            for r in made:
                typer.echo(json.dumps(r))
        else:
            task_data.write_jsonl(made, out)
            err.print(f"wrote {len(made)} solvable problems to {out}")
    except (ValueError, OSError) as e:
        _fail(str(e))


def _inspect(path: str, n: int, model: str | None, template: str, skip_malformed: bool) -> None:
    """Rows with their prompts as the model sees them (with --model, its chat template;
    otherwise Qwen2.5's ChatML layout, which the tiny model uses too)."""
    from r1zero.task import data as task_data
    from r1zero.task.prompts import get_template, messages, render

    loaded = task_data.load_rows(path, skip_malformed=skip_malformed)
    if loaded.skipped:
        err.print(f"skipped {loaded.skipped} malformed rows")
    tpl = get_template(template)
    if model is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        show = lambda r: render(tok, tpl, r["nums"], r["target"])  # noqa: E731
    else:
        from r1zero.tiny.tokenizer import chat_text

        show = lambda r: chat_text(messages(tpl, r["nums"], r["target"]))  # noqa: E731
    typer.echo(f"{len(loaded.rows)} rows")
    for r in loaded.rows[:n]:
        typer.echo(f"--- nums={r['nums']} target={r['target']}")
        typer.echo(show(r))


@app.command()
def score(
    infile: Annotated[Path, typer.Argument(help="JSONL rows with completion, nums, target.")],
    out: Annotated[
        Path, typer.Option(help="Output JSONL: each row plus format, equation, thought_len.")
    ],
) -> None:
    """Re-score completions (a run's samples, or the tutorial's files) with r1zero's safe rewards."""
    from r1zero.task.score import score_file

    try:
        summary = score_file(infile, out)
    except (ValueError, OSError) as e:
        _fail(str(e))
    typer.echo(json.dumps(summary))


@app.command("eval")
def eval_cmd(
    model: Annotated[
        str, typer.Argument(help="Model folder or checkpoint (full weights or LoRA adapter).")
    ],
    data: Annotated[
        str, typer.Option("--data", help="Held-out problems: any file the data loader takes.")
    ],
    n: Annotated[int, typer.Option(help="Problems to score (first n).")] = 200,
    k: Annotated[int, typer.Option(help="Samples per problem for pass@k; 0 skips it.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here.")
    ] = None,
    samples: Annotated[
        Path | None, typer.Option(help="Write every completion with its rewards here (JSONL).")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Prompt template: zh, en or short (default: the one the run trained with, "
            "read from its config.yaml, else zh)."
        ),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Completion budget.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature for pass@k.")] = 1.0,
    batch_size: int = 64,
    seed: int = 0,
) -> None:
    """Score any checkpoint on held-out problems: greedy accuracy, format rate, length, pass@k."""
    from r1zero.evaluate import evaluate, load_for_eval, write_eval

    try:
        policy, cfg = load_for_eval(
            model,
            template=template or _trained_template(model) or "zh",
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
        )
        from r1zero.task import data as task_data

        rows = task_data.load_rows(data).rows[:n]
    except (ValueError, OSError) as e:
        _fail(str(e))
    result, rows_out = evaluate(policy, rows, cfg, k=k, batch_size=batch_size)
    result["model"], result["data"] = model, data
    write_eval(result, rows_out, json_out, samples)
    typer.echo(json.dumps(result))


def _trained_template(model: str) -> str | None:
    """The prompt template a run folder (or one of its checkpoints) trained with; the tiny
    model's own for the embedded default."""
    from r1zero.config import load_config

    for folder in (Path(model), Path(model).parent):
        if (folder / "config.yaml").is_file():
            return load_config(folder / "config.yaml").data.prompt_template
    if (Path(model) / "r1zero_tiny.json").is_file():
        from r1zero.tiny import TINY_TEMPLATE

        return TINY_TEMPLATE
    return None


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to overlay.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")] = Path(
        "report.html"
    ),
    watch: Annotated[bool, typer.Option(help="Rebuild while the run goes on.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rebuilds with --watch.")] = 30.0,
    phrase: Annotated[
        list[str] | None,
        typer.Option(
            help="A phrase to plot as its share of every completion per step (repeatable; "
            "case-insensitive; re:REGEX for a regex), e.g. --phrase guess --phrase 等等."
        ),
    ] = None,
) -> None:
    """One self-contained HTML report: curves, behaviour detectors, sample browser."""
    from r1zero import report as rep
    from r1zero.report.build import ReportError

    for d in run_dirs:
        if not (d / "metrics.jsonl").is_file():
            _fail(f"{d} is not a run folder (no metrics.jsonl)")
    try:
        if watch:
            rep.watch(run_dirs[0], output, interval_s=interval, phrases=phrase or [])
            return
        stats = rep.build_report(run_dirs, output, phrases=phrase or [])
    except ReportError as e:
        from rich.markup import escape

        _fail(escape(str(e)))
    err.print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB)")
    typer.echo(json.dumps(stats, default=str))


@app.command()
def tiny(
    seed: int = 0,
    force: Annotated[bool, typer.Option(help="Rebuild even if cached.")] = False,
) -> None:
    """Build the embedded tiny model (cached) and print its path as the last line."""
    from r1zero.tiny import build_tiny

    path = build_tiny(seed=seed, force=force, log=err.print)
    typer.echo(str(path))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Measure rollout, training and whole-step speed and memory on a GPU (see --help there)."""
    from r1zero.bench.main import main as bench_main

    bench_main(list(ctx.args))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
