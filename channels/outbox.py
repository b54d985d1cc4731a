"""The `outbox` channel: writes each post to a local folder instead of a platform.

Each post becomes one JSON line in `<path>/<channel>.jsonl` and a readable text file in
`<path>/<channel>/`. Nothing leaves the machine, so it needs no credentials: the example config uses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar, Literal, cast

from pydantic import Field

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt


class OutboxOptions(ChannelOptions):
    """Options of an outbox channel instance."""

    type: Literal["outbox"] = Field(default="outbox", description="Writes posts to local files.")
    path: str = Field(default="outbox", description="Folder the posts are written to (relative to config.yaml).")
    kind: Literal["social", "forum", "email"] = Field(
        default="social", description="Which kind of channel this outbox stands in for (sets utm_medium).")
    max_length: int | None = Field(default=None, ge=1, description="Simulated length limit, in characters.")
    latency: float = Field(default=0, ge=0, le=60, description="Simulated seconds each send takes (for demos).")


class OutboxChannel(Channel):
    """Appends posts to local files; a post's key makes a repeated write detectable."""

    type = "outbox"
    Options: ClassVar[type[ChannelOptions]] = OutboxOptions
    limits = Limits(max_length=None, counting="chars", media=True)

    def __init__(self, name: str, options: ChannelOptions, *, base_dir: Path | None = None) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self._opts = cast(OutboxOptions, options)
        self.folder = self.base_dir / self._opts.path
        if self._opts.max_length:
            self.limits = Limits(max_length=self._opts.max_length, counting="chars", media=True)

    @property
    def medium(self) -> str:
        return self._opts.kind

    @property
    def journal_file(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    async def send(self, post: Post) -> Receipt:
        if self._opts.latency:
            await asyncio.sleep(self._opts.latency)
        return await asyncio.to_thread(self._write, post)

    async def lookup(self, post: Post) -> Receipt | None:
        return await asyncio.to_thread(self._find, post.key)

    def _write(self, post: Post) -> Receipt:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = post.slot.strftime("%Y%m%dT%H%M%SZ")
        remote_id = f"{stamp}-{hashlib.sha256(post.key.encode()).hexdigest()[:12]}"
        text_dir = self.folder / self.name
        text_dir.mkdir(exist_ok=True)
        text_file = text_dir / f"{remote_id}.txt"
        body = post.text if post.subject is None else f"Subject: {post.subject}\n\n{post.text}"
        text_file.write_text(body + "\n", encoding="utf-8")
        record = {"id": remote_id, "key": post.key, "campaign": post.campaign, "item": post.item,
                  "variant": post.variant, "slot": post.slot.isoformat(), "text": post.text,
                  "subject": post.subject, "image": post.image_url, "links": post.links,
                  **({"market": post.market} if post.market else {})}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.journal_file.open("ab+") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end:  # a line torn by a crash must not swallow this one
                fh.seek(end - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return Receipt(remote_id=remote_id, url=text_file.resolve().as_uri())

    def _find(self, key: str) -> Receipt | None:
        if not self.journal_file.exists():
            return None
        with self.journal_file.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if record.get("key") == key:
                    text_file = self.folder / self.name / f"{record['id']}.txt"
                    return Receipt(remote_id=record["id"], url=text_file.resolve().as_uri())
        return None
