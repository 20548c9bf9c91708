"""``python -m neat``: run the demo (see :mod:`neat.demo`)."""

import sys


def main() -> int:
    from neat.demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main())
