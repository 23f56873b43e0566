"""Tools agents use inside environments: sandboxes, retrievers and their servers."""
