-- The credentials that authenticate a request right now: sessions not revoked and API keys
-- not revoked, each of a user who is not disabled, with that user's plan. Writes made in the
-- same D1 batch as a request's authentication are gated on a row here, so nothing is written
-- for a credential that turns out to be dead (or for a user whose plan was guessed wrong).

CREATE VIEW live_credentials AS
    SELECT 'session' AS kind, s.session_id AS credential, s.user_id AS user_id, u.plan AS plan
    FROM sessions s JOIN users u ON u.user_id = s.user_id
    WHERE s.revoked_at IS NULL AND u.is_disabled = 0
    UNION ALL
    SELECT 'key', k.key_hash, k.user_id, u.plan
    FROM api_keys k JOIN users u ON u.user_id = k.user_id
    WHERE k.revoked_at IS NULL AND u.is_disabled = 0;
