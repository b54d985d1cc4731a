"""Store feeds: new products and articles in a store's RSS/Atom feeds become campaign posts, once.

- `fetch`: conditional GET with httpx (ETag / Last-Modified, timeout, size limit, a user agent naming
  drainage) and parsing with feedparser; a malformed document is a `FeedError` with the reason.
- `storefields`: what feedparser cannot read: Shopify's product namespace (variants and their prices, type,
  tags) and Google Merchant fields used by WooCommerce product feeds.
- `entries`: an entry's identity (id/guid, else link, else a hash of title + link) and its fields for templates.
- `filters`: which entries a feed posts (categories, tags, price range, title).
- `poller`: polls due feeds, records every entry it sees and queues the new ones (and repost events) per channel.
- `release`: hands queued entries to the journal at the feed's posting slots, at most `cap` per slot.
- `check`: what `drainage feeds check` and `drainage feeds status` show.
"""
