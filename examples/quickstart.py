"""The seed's script-mode quick start: enqueue a job, then run worker and dispatcher.

    pip install -e . && python examples/quickstart.py

Stop it with Ctrl-C (graceful). Pass --once to exit by itself after the job ran.
"""

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from quebec.logger import setup_logging

setup_logging(level=logging.INFO)

import quebec  # noqa: E402

db_path = Path("demo.db")
qc = quebec.Quebec(f"sqlite://{db_path}?mode=rwc")


@qc.register_job
class FakeJob(quebec.BaseClass):
    def perform(self, *args, **kwargs):
        self.logger.info(f"Processing job {self.id}: args={args}, kwargs={kwargs}")
        if "--once" in sys.argv:
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()


if __name__ == "__main__":
    FakeJob.perform_later(123, foo="bar")
    qc.run(create_tables=not db_path.exists())
