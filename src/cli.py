"""What every entry point shares: logging set-up, and user-fixable errors as one log line with exit code 2."""

import functools
import logging
import sys
from collections.abc import Callable

from src.errors import LabError

Main = Callable[[list[str]], int]


def entry_point(log: logging.Logger, user_errors: tuple[type[Exception], ...] = (LabError,)
                ) -> Callable[[Main], Callable[[list[str] | None], int]]:
    """Decorate `main(args) -> exit code`: args default to sys.argv[1:]; `user_errors` print no traceback."""

    def wrap(body: Main) -> Callable[[list[str] | None], int]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
            try:
                return body(sys.argv[1:] if argv is None else argv)
            except user_errors as err:
                log.error("%s", err)
                return 2

        return main

    return wrap
