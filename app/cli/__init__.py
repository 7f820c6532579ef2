"""Subcommands of `python main.py`.

Each module listed in COMMAND_MODULES defines NAME, HELP, `add_arguments(parser)` and
`run(args) -> int`. Adding a subcommand is a new module and one line here.
"""
COMMAND_MODULES = [
    "app.cli.info",
    "app.cli.score",
    "app.cli.bench_clicks",
    "app.cli.train_correction",
    "app.cli.combine_correction",
    "app.cli.replay",
    "app.cli.noisy_labels",
    "app.cli.train",
    "app.cli.segment",
    "app.cli.evaluate",
    "app.cli.prelabel",
    "app.cli.export",
]
