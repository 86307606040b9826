-- The history of each deal's stage: who moved where, and when.

CREATE TABLE deal_stage_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deal_id bigint NOT NULL REFERENCES deals (id),
  from_stage text NOT NULL,
  to_stage text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deal_stage_changes_deal_idx ON deal_stage_changes (deal_id, changed_at);
