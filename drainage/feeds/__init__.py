"""Store feeds: new products and articles in a store's RSS/Atom feeds become campaign posts, once.

- `fetch`: conditional GET with httpx (ETag / Last-Modified, timeout, size limit, a user agent naming
  drainage).
- `parse`: feedparser on a defused document (entity declarations refused, HTML named entities read); a
  malformed document is a `FeedError` with the reason.
- `sandbox` and `worker`: parsing in worker processes with a time limit and a memory cap.
- `storefields`: what feedparser cannot read: Shopify's product namespace (variants and their prices, type,
  tags) and Google Merchant fields used by WooCommerce product feeds.
- `entries`: an entry's identity (id/guid, else link, else a hash of title + link), its fields for templates,
  and what keeps it from making a good post (`defect`).
- `trial`: renders an entry's posts before it is queued (a template that would print a missing value).
- `filters`: which entries a feed posts (categories, tags, price range, title).
- `poller`: polls due feeds, records every entry it sees and queues the new ones (and repost events) per channel.
- `release`: hands queued entries to the journal at the feed's posting slots, at most `cap` per slot.
- `check`: what `drainage feeds check` and `drainage feeds status` show.
"""
