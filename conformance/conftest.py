"""Load the conformance plug-in when pytest collects this folder (``pytest conformance``,
``pytest --pyargs neat.conformance``); a ``-p neat.conformance.plugin`` or a ``pytest11``
entry point of that name loads it earlier and this line is then a no-op."""

pytest_plugins = ["neat.conformance.plugin"]
