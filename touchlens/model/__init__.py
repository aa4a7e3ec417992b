"""The designed world: the touchpoint map, its file format and its checks. Pure Python, no I/O."""
