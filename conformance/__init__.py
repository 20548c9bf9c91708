"""NEAT's conformance suite and its float64 reference (installed as ``neat.conformance``)."""
