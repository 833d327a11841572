-- Requests are now authenticated before anything is counted or written, so no write is gated
-- on the live_credentials view any more.

DROP VIEW IF EXISTS live_credentials;
