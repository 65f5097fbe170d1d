"""``joblet encryption-key generate``: a fresh key for ``--encryption-key-file``.

Why a command: an AES key must come from a cryptographic random source and be encoded exactly as
the key file expects (format in :mod:`joblet.security.encryption`); printing it alone on stdout
lets ``joblet encryption-key generate > FILE`` (with a umask of 077) create the file directly.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from joblet.security.encryption import DEFAULT_KEY_NAME, EncryptionError, generate_key_line

encryption_key_app = typer.Typer(name="encryption-key", help="Keys that encrypt Secrets at rest.",
                                 no_args_is_help=True)


@encryption_key_app.command("generate")
def generate(
    name: Annotated[str, typer.Option("--name", help="The key's name, recorded in every value it encrypts.")]
    = DEFAULT_KEY_NAME,
) -> None:
    """Print a new 32-byte AES-GCM key as a key-file line (NAME:BASE64KEY)."""
    try:
        line = generate_key_line(name)
    except EncryptionError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(line + "\n")
