"""Tools agents use inside environments, and servers: retrievers and their server, the environment server."""
