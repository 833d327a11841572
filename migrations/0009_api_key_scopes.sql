-- API keys get scopes (what a key may be used for: names from gateway, chat, read, tools,
-- separated by single spaces) and an optional expiry. Keys made before scopes existed get
-- `gateway`, the use keys were made for and the new default: least privilege, and a user who
-- wants more makes a new key.

ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'gateway';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;    -- epoch ms; NULL never expires
