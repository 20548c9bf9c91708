"""Built-in adapter plug-ins (installed as ``neat.adapters``): they map a framework's
modules, models or pytrees to tensors, players and a player graph."""
