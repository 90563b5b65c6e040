-- Blind transfers (REFER): the record of a call placed for a transfer names who referred it
-- (the user part of the REFER's From) and the Call-ID of the call record it was transferred
-- from. Both are NULL for calls that were not transfers.
ALTER TABLE cdrs ADD COLUMN referred_by TEXT;
ALTER TABLE cdrs ADD COLUMN transfer_of TEXT;
