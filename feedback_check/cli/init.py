"""`init`: write the commented starter profile."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

TEMPLATE = "feedback-check.yaml"


def starter_profile() -> str:
    return resources.files("feedback_check").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


@click.command()
@click.argument("path", default=TEMPLATE, type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> int:
    """Write a commented starter profile to PATH (default ./feedback-check.yaml; a folder: PATH/feedback-check.yaml)."""
    from feedback_check.errors import ConfigError

    target = Path(path)
    if target.is_dir():
        target = target / TEMPLATE            # `init /etc/feedback-check`, as `git init DIR` takes a folder
        path = str(target)
        if target.is_dir():
            raise ConfigError("is a directory, not a profile", file=path)
    if target.exists() and not force:
        raise ConfigError("already exists (use --force to overwrite)", file=path)
    try:
        target.write_text(starter_profile(), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write: {e.strerror}", file=path) from None
    click.echo(f"Wrote {path}. Fill in your post-sale URLs and SHA-OUT settings as in the PostFinance back "
               f"office, then run: feedback-check check --config {path}")
    return 0
