-- Login throttling: an email's failures across addresses add waits that grow from its last
-- failure (epoch milliseconds; null in the other counters). Counter keys are now also
-- email_ip:<sha256 of the email and address> (failures of one email from one address) and
-- register:<address> (registrations from one address).

ALTER TABLE login_attempts ADD COLUMN last_failure_at INTEGER;
