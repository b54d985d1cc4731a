"""Channel reports: what each channel, campaign, variant, item and day brought.

`request` parses the filters (period, campaign, channel, grouping) shared by the CLI and `/reports`; `query`
reads the daily rollups, the journal and the orders into the plain dataclasses of `model` (never raw clicks);
`posts` gives clicks to the posts that carried the links; `stats` and `variants` say whether a variant's lead
is significant; `render_*` turn a `Report` into a terminal table, CSV/JSON or one self-contained HTML file;
`web` serves it at `/reports` behind a token.
"""
