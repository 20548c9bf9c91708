"""Built-in backend plug-ins (installed as ``neat.backends``), each registered
through the ``neat`` entry-point group exactly as a third party's would be."""
