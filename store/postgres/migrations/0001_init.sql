-- The first schema of the PostgreSQL store (docs/STORE.md, "PostgreSQL").
-- Times the store orders or filters by are kept as bigint Unix nanoseconds,
-- the precision of Go's time.Time (timestamptz keeps microseconds only,
-- which would reorder requests created within one microsecond); doc is the
-- value as the domain encodes it (JSON), the source of truth for every
-- field. doc is bytea, not jsonb: jsonb refuses the \u0000 a claim may hold
-- and reorders keys; the store never queries inside it. person_key is bytea
-- because PersonKey joins its parts with NUL bytes, which text refuses.

CREATE TABLE requests (
    id              text    PRIMARY KEY,
    -- One request per person: the constraint, not a read before the write,
    -- is what makes concurrent sign-ups of one person yield one request.
    person_key      bytea   NOT NULL UNIQUE,
    status          text    NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    provisioning    text    NOT NULL,
    created_ns      bigint  NOT NULL,
    version         bigint  NOT NULL CHECK (version > 0),
    -- The job queue: set while provisioning is in progress, NULL otherwise.
    job_next_ns     bigint,
    lease_until_ns  bigint,
    -- The decisions read model: the decision time of a decided request.
    decided_ns      bigint,
    doc             bytea   NOT NULL
);
CREATE INDEX requests_by_creation ON requests (created_ns, id);
CREATE INDEX requests_by_status ON requests (status, created_ns, id);
CREATE INDEX requests_jobs ON requests (job_next_ns, id) WHERE job_next_ns IS NOT NULL;
CREATE INDEX requests_decisions ON requests (decided_ns, id) WHERE decided_ns IS NOT NULL;

-- The audit trail. seq comes from audit_seq. A sequence hands out numbers
-- in call order but they become visible in commit order, so every
-- appending transaction holds a shared advisory lock from its nextval to
-- its commit, and a reader of the trail first takes that lock exclusively
-- for an instant: every seq handed out before then is committed or rolled
-- back, and the reader shows nothing above it (docs/STORE.md). Appends
-- never wait for each other.
CREATE SEQUENCE audit_seq AS bigint;

CREATE TABLE events (
    seq         bigint  PRIMARY KEY,
    at_ns       bigint  NOT NULL,
    type        text    NOT NULL,
    request_id  text    NOT NULL,
    doc         bytea   NOT NULL
);
CREATE INDEX events_by_request ON events (request_id, seq);

CREATE TABLE sessions (
    id_hash     text    PRIMARY KEY CHECK (id_hash <> ''),
    expires_ns  bigint  NOT NULL,
    doc         bytea   NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_ns, id_hash);

CREATE TABLE cookie_keys (
    id          bigint  PRIMARY KEY,
    secret      bytea   NOT NULL,
    created_ns  bigint  NOT NULL
);

-- The outbox. enq orders deliveries as they were enqueued (the listing's
-- order); next_ns and lease_until_ns are the queue.
CREATE TABLE deliveries (
    id              text    PRIMARY KEY,
    enq             bigserial UNIQUE,
    channel         text    NOT NULL,
    state           text    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    request_id      text    NOT NULL,
    next_ns         bigint  NOT NULL,
    lease_until_ns  bigint,
    sent_ns         bigint,
    doc             bytea   NOT NULL
);
CREATE INDEX deliveries_queue ON deliveries (next_ns, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_request ON deliveries (request_id, enq);
CREATE INDEX deliveries_sent ON deliveries (sent_ns) WHERE state = 'sent';
