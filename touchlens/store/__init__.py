"""Storage at the edge: the workspace folder, its settings, the metadata and events stores."""
