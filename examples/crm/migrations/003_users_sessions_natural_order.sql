-- Sign-in: the CRM's users and their sessions; and names sorted as people
-- read them ("item 2" before "item 10", case and accents ignored first).

CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
  -- scrypt$N$r$p$salt$hash (base64url): never the password itself.
  password_hash text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
  is_admin boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_idx ON users (username);

-- The cookie holds a random token; the table only its SHA-256, so a read of
-- the table does not give a usable session.
CREATE TABLE sessions (
  token_hash bytea PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- ICU's root locale with numeric ordering: digits compare as numbers, and
-- case and accents only break ties (apple < Apple < Banana; e < é < f).
CREATE COLLATION natural_names (provider = icu, locale = 'und-u-kn-true');
CREATE INDEX companies_natural_name_idx ON companies ((name COLLATE natural_names), id);
CREATE INDEX contacts_natural_name_idx ON contacts ((name COLLATE natural_names), id);
