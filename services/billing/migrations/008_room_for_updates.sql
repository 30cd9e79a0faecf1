-- Issue 19: room on each page for the rows a renewal updates. Each renewal updates these rows
-- once or twice; on a full page (fillfactor 100, the default) the new version goes to another
-- page, and PostgreSQL then logs a row lock on the old one besides the update, dirties two pages,
-- and cannot keep the update heap-only (HOT) where no indexed column changes. Pages filled to
-- 70 % leave room beside the old version, which page pruning reclaims once it is dead. New pages
-- only: a page already full stays so until its rows move (tests/integration/test_room_for_updates.py).
ALTER TABLE orders SET (fillfactor = 70);
