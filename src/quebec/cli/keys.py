"""`python -m quebec keys generate|rotate`: encryption keys for `encrypt = True` jobs."""

from __future__ import annotations

import click

from quebec import ops
from quebec.cli.common import CommandError, database, json_option
from quebec.cli.output import emit_json
from quebec.encryption import Cipher, generate_key


@click.group("keys", short_help="Make or rotate encryption keys.")
def keys() -> None:
    """Make or rotate the keys of encryption_key (QUEBEC_ENCRYPTION_KEY)."""


@keys.command("generate")
@json_option
def generate(as_json: bool) -> int:
    """Print a new Fernet key, to put first in QUEBEC_ENCRYPTION_KEY."""
    try:
        key = generate_key()
    except ImportError:
        raise CommandError("making a key needs the cryptography package; pip install 'quebec[encryption]'") from None
    if as_json:
        emit_json({"key": key})
    else:
        click.echo(key)
    return 0


@keys.command("rotate")
@click.option("--batch-size", type=int, default=500, show_default=True, help="Rows re-encrypted per transaction.")
@json_option
def rotate(batch_size: int, as_json: bool) -> int:
    """Re-encrypt every stored encrypted argument list and result with the first key of
    QUEBEC_ENCRYPTION_KEY; drop the old keys once it has finished."""
    with database() as (settings, db):
        changed = ops.rotate_encryption_keys(db, Cipher.from_setting(settings.encryption_key), batch_size=batch_size)
    if as_json:
        emit_json({"rotated": changed})
    else:
        click.echo(f"re-encrypted {changed} row(s) with the first key")
    return 0
