-- Issue 16 item 3: a request id is the client's, and scoped to who sent it and for which CSN.
-- `request_id` of a batch is now that scoped key (`<signer>|<actor's CSN>|<request id>`, see
-- shared/messaging/identity.py), so that another tenant reusing a request id is recorded and
-- answered, not taken for a duplicate; the answers carry the client's own `client_request_id`.
-- `signer` is the proven sender (portal, sales, partner-<CSN>): the bulk worker decides with it.
-- Rows from before have neither: their `request_id` is the client's and the body was believed.
ALTER TABLE renewal_batches ADD COLUMN client_request_id text, ADD COLUMN signer text;
