"""The click tracker: a fast 302 hop that logs every click-through, tells bots from people, and takes orders."""
