"""Presenters: they turn what a command got from the services into tables and lines on a rich Console (or into
the file asked for).

They compute nothing and read nothing: a command gathers the data, a presenter only shows it. Commands import
them where used, so that `drainage --help` does not import rich.
"""
