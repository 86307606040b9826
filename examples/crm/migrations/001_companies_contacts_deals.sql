-- Companies, their contacts, and the deals made with them.

CREATE TABLE companies (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  website text NOT NULL DEFAULT '',
  notes text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX companies_name_idx ON companies (lower(name), id);

CREATE TABLE contacts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  company_id bigint NOT NULL REFERENCES companies (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email text NOT NULL DEFAULT '',
  phone text NOT NULL DEFAULT '',
  job_title text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_company_idx ON contacts (company_id);
CREATE INDEX contacts_name_idx ON contacts (lower(name), id);

CREATE TABLE deals (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  company_id bigint NOT NULL REFERENCES companies (id),
  contact_id bigint REFERENCES contacts (id),
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  amount numeric(14, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
  stage text NOT NULL DEFAULT 'lead' CHECK (stage IN ('lead', 'qualified', 'proposal', 'won', 'lost')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deals_company_idx ON deals (company_id);
CREATE INDEX deals_contact_idx ON deals (contact_id);
CREATE INDEX deals_stage_idx ON deals (stage, updated_at DESC);
