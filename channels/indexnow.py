"""stub"""
from __future__ import annotations

from drainage.channel import Channel, Post, Receipt


class IndexNowChannel(Channel):
    type = "indexnow"

    async def send(self, post: Post) -> Receipt:
        raise NotImplementedError
