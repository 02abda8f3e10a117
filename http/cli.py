"""The ``ferrymq`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferrymq", description="FerryMQ message queue")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("ferrymq"))
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
