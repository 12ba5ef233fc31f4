"""twistd tap modules: ``Options`` and ``makeService`` for each plugin."""
