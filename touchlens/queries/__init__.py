"""Analysis queries: one frozen query class and one pure run function per analysis (see `touchlens.registry`)."""
