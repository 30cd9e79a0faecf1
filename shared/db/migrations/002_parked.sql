-- What a service set aside so that the rest goes on (issue 15, item 2), until an operator acts.

-- An item a background loop could not handle (a row that makes its decision raise): the loop
-- claims it no more until an operator deletes the row here (after fixing the cause).
CREATE TABLE parked_items (
    loop      text NOT NULL,
    item      text NOT NULL,
    reason    text NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (loop, item)
);

-- An outbox row the broker refused for the message's own sake (too large, unknown topic): the
-- relay moves it here and publishes the others; `renewals outbox retry|drop ID` acts on it.
CREATE TABLE outbox_parked (
    id         bigint PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL,
    error      text NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);
