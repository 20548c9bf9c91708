"""``python -m neat``: run the demo (see :mod:`neat.demo`)."""

import sys

#: What the demo imports beyond NEAT's own dependencies (module: distribution), and the extra
#: that installs it.
DEMO_EXTRA = "demo"
DEMO_MODULES = {"sklearn": "scikit-learn"}


def main() -> int:
    """Run the demo; without the ``demo`` extra, say which extra to install (exit status 1)."""
    for module, distribution in DEMO_MODULES.items():
        try:
            __import__(module)
        except ImportError:
            print(
                f"python -m neat runs a demo that needs the '{DEMO_EXTRA}' extra ({distribution} is not "
                "installed):\n"
                f"    pip install 'neat-nash[{DEMO_EXTRA}]'",
                file=sys.stderr,
            )
            return 1
    from neat.demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main())
