-- Which built-in tools a conversation offers: their names separated by single spaces, in the
-- order the user gave ('' offers none); NULL offers every built-in (the default, so existing
-- conversations keep every tool). Validated in the core (conversations::validate_tools).
ALTER TABLE conversations ADD COLUMN tools TEXT;
