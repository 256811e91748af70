"""The `parley` command and the process that runs every component together."""
