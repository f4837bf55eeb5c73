-- GitHub deployments gated by t-minus (docs/github.md): one row per
-- `deployment_protection_rule` delivery accepted, written with its
-- `github-requested` log entry. `delivery` is GitHub's X-GitHub-Delivery
-- GUID (unique: a replayed delivery is refused); `campaign_id` the campaign
-- made for the deployment. `state` is waiting until the answer is sent to
-- `callback_url` (reported) or given up (failed); `verdict` (approved or
-- rejected) is set when the campaign decides. `next_ms` (wall clock) is when
-- the next attempt may run, or when the lease of the attempt under way ends.
CREATE TABLE tm_github_deployments (
    id              uuid PRIMARY KEY,
    delivery        TEXT NOT NULL UNIQUE,
    campaign_id     uuid NOT NULL UNIQUE,
    template        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    environment     TEXT NOT NULL,
    deployment_id   BIGINT,
    git_ref           TEXT,
    sha             TEXT,
    run_url         TEXT,
    installation_id BIGINT NOT NULL,
    callback_url    TEXT NOT NULL,
    received_ms     BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('waiting', 'reported', 'failed')),
    verdict         TEXT CHECK (verdict IN ('approved', 'rejected')),
    comment         TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_ms         BIGINT NOT NULL,
    finished_ms     BIGINT,
    last_error      TEXT
);
CREATE INDEX tm_github_deployments_due ON tm_github_deployments (next_ms) WHERE state = 'waiting';
