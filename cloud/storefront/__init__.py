"""The public buyer site: what anyone may read without signing in, and (later) the buyer's
pages, with their own blueprint and buyer session."""
