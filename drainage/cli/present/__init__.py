"""Presenters: they turn what a command got from the services into tables and lines on a rich Console.

They compute nothing and read no file or database: a command gathers the data, a presenter only shows it.
"""
