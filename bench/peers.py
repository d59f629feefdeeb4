"""The peers' venvs: one per peer, made on first use (``python3 -m venv`` + ``pip install``).

    python bench/peers.py                 # make (or check) every peer's venv and print its interpreter

Root: ``$QUEBEC_BENCH_VENVS`` or ``/opt/quebec-bench-venvs`` (``run.py --venvs DIR``); one folder
per peer. A venv whose recorded requirements differ from ``PEERS`` is made again. Neither venv
gets quebec: each peer runs its own workload script (``peer_<name>.py``), which imports only the
standard library, its peer, and ``common``/``dbutil`` from this folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROOT = os.environ.get("QUEBEC_BENCH_VENVS", "/opt/quebec-bench-venvs")
# PgQueuer brings uvloop, which its CLI runs on; asyncpg is its default driver. psycopg[binary] is
# the C build ours uses too (without it Procrastinate gets the pure-Python one).
PEERS: dict[str, list[str]] = {
    "pgqueuer": ["pgqueuer==1.6.*", "asyncpg"],
    "procrastinate": ["procrastinate==3.10.*", "psycopg[binary]"],
}
MARKER = "quebec-bench-requirements.txt"


def script(peer: str) -> str:
    return os.path.join(HERE, f"peer_{peer}.py")


def venv_python(peer: str, root: str = DEFAULT_ROOT) -> str:
    """The interpreter of ``peer``'s venv, making the venv first when it is missing or stale."""
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")
    venv = os.path.join(root, peer)
    python = os.path.join(venv, "bin", "python")
    wanted = "\n".join(PEERS[peer]) + "\n"
    marker = os.path.join(venv, MARKER)
    try:
        with open(marker) as fh:
            if fh.read() == wanted and os.path.exists(python):
                return python
    except OSError:
        pass
    print(f"[peers] making the {peer} venv in {venv} ({', '.join(PEERS[peer])}) ...", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    os.makedirs(root, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *PEERS[peer]], check=True)
    with open(marker, "w") as fh:
        fh.write(wanted)
    return python


def version(peer: str, python: str) -> str:
    out = subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({peer!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ROOT
    for name in PEERS:
        py = venv_python(name, root)
        print(f"{name} {version(name, py)}: {py}")
