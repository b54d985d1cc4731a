"""Built-in channel plugins, registered through the `drainage.channels` entry-point group."""
