"""Names domain: a text codec (names file <-> token ids) on the shared sequence core, and a generator."""
