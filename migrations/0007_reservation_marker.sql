-- The call that last reserved tokens of a day's budget. A chat turn's messages are stored in
-- the same D1 batch as its counts, each insert gated on its own reservation being the last
-- (and on its stream slot, if any): a refused turn stores nothing.

ALTER TABLE daily_tokens ADD COLUMN last_reservation TEXT;
