/**
 * Every SQL statement of the CRM, behind plain functions. Reads go through
 * `db.read` (retried after a cut connection), changes through `db.write` or
 * `db.transaction` (retried only when they certainly did not run). All values
 * are bound parameters; amounts stay numeric strings end to end.
 */
import { STAGES } from './validate.js';

/** Rows per list page. */
export const PAGE_SIZE = 25;
/** Rows per kind in search results, and deals per stage column in the pipeline. */
const SHORT_LIST = 20;
const PIPELINE_DEALS_PER_STAGE = 50;
/** Choices offered in a company or contact select. */
const MAX_CHOICES = 1000;
/** Names in the order people read them: "item 2" before "item 10", case and accents only break ties. */
const NATURAL = 'COLLATE natural_names';

/** `%term%` for ILIKE, with the user's own `%`, `_` and `\` matching literally. */
function containsPattern(term) {
  return `%${term.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

/** A page of rows: fetches one extra row to know whether a next page exists. */
async function page(db, sql, values, pageNumber) {
  const offset = (pageNumber - 1) * PAGE_SIZE;
  const { rows } = await db.read(`${sql} LIMIT ${PAGE_SIZE + 1} OFFSET $${values.length + 1}`, [...values, offset]);
  return { rows: rows.slice(0, PAGE_SIZE), page: pageNumber, hasNext: rows.length > PAGE_SIZE };
}

const DEAL_COLUMNS = `d.id, d.title, d.amount, d.stage, d.company_id, d.contact_id, d.created_at, d.updated_at,
  c.name AS company_name, p.name AS contact_name`;
const DEAL_JOINS = 'deals d JOIN companies c ON c.id = d.company_id LEFT JOIN contacts p ON p.id = d.contact_id';
const DEAL_OWNER_COLUMNS = { company: 'company_id', contact: 'contact_id' };

export function createStore(db) {
  const first = async (sql, values) => (await db.read(sql, values)).rows[0];

  return {
    // Companies
    listCompanies: (pageNumber) =>
      page(
        db,
        `SELECT c.id, c.name, c.website,
           (SELECT count(*) FROM contacts WHERE company_id = c.id)::int AS contacts,
           (SELECT count(*) FROM deals WHERE company_id = c.id AND stage NOT IN ('won', 'lost'))::int AS open_deals
         FROM companies c ORDER BY c.name ${NATURAL}, c.id`,
        [],
        pageNumber,
      ),
    getCompany: (id) => first('SELECT * FROM companies WHERE id = $1', [id]),
    companyChoices: async () =>
      (await db.read(`SELECT id, name FROM companies ORDER BY name ${NATURAL}, id LIMIT ${MAX_CHOICES}`)).rows,
    insertCompany: async ({ name, website, notes }) =>
      (
        await db.write('INSERT INTO companies (name, website, notes) VALUES ($1, $2, $3) RETURNING id', [
          name,
          website,
          notes,
        ])
      ).rows[0].id,
    updateCompany: async (id, { name, website, notes }) =>
      (
        await db.write('UPDATE companies SET name = $2, website = $3, notes = $4, updated_at = now() WHERE id = $1', [
          id,
          name,
          website,
          notes,
        ])
      ).rowCount === 1,

    // Contacts
    listContacts: (pageNumber) =>
      page(
        db,
        `SELECT p.id, p.name, p.email, p.phone, p.job_title, p.company_id, c.name AS company_name
         FROM contacts p JOIN companies c ON c.id = p.company_id ORDER BY p.name ${NATURAL}, p.id`,
        [],
        pageNumber,
      ),
    contactsOfCompany: async (companyId) =>
      (await db.read(`SELECT * FROM contacts WHERE company_id = $1 ORDER BY name ${NATURAL}, id`, [companyId])).rows,
    getContact: (id) =>
      first(
        'SELECT p.*, c.name AS company_name FROM contacts p JOIN companies c ON c.id = p.company_id WHERE p.id = $1',
        [id],
      ),
    contactChoices: async () =>
      (
        await db.read(
          `SELECT p.id, p.name, p.company_id, c.name AS company_name FROM contacts p JOIN companies c ON c.id = p.company_id
           ORDER BY c.name ${NATURAL}, p.name ${NATURAL}, p.id LIMIT ${MAX_CHOICES}`,
        )
      ).rows,
    insertContact: async ({ company_id, name, email, phone, job_title }) =>
      (
        await db.write(
          `INSERT INTO contacts (company_id, name, email, phone, job_title) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
          [company_id, name, email, phone, job_title],
        )
      ).rows[0].id,
    updateContact: async (id, { company_id, name, email, phone, job_title }) =>
      (
        await db.write(
          `UPDATE contacts SET company_id = $2, name = $3, email = $4, phone = $5, job_title = $6, updated_at = now()
           WHERE id = $1`,
          [id, company_id, name, email, phone, job_title],
        )
      ).rowCount === 1,

    // Deals
    listDeals: (pageNumber) =>
      page(db, `SELECT ${DEAL_COLUMNS} FROM ${DEAL_JOINS} ORDER BY d.updated_at DESC, d.id DESC`, [], pageNumber),
    /** The latest deals of a company (`owner` 'company') or of a contact ('contact'). */
    dealsOf: async (owner, id) =>
      (
        await db.read(
          `SELECT ${DEAL_COLUMNS} FROM ${DEAL_JOINS} WHERE d.${DEAL_OWNER_COLUMNS[owner]} = $1
           ORDER BY d.updated_at DESC, d.id DESC LIMIT ${PAGE_SIZE}`,
          [id],
        )
      ).rows,
    getDeal: (id) => first(`SELECT ${DEAL_COLUMNS} FROM ${DEAL_JOINS} WHERE d.id = $1`, [id]),
    stageHistory: async (dealId) =>
      (
        await db.read(
          'SELECT from_stage, to_stage, changed_at FROM deal_stage_changes WHERE deal_id = $1 ORDER BY changed_at, id',
          [dealId],
        )
      ).rows,
    insertDeal: async ({ company_id, contact_id, title, amount, stage }) =>
      (
        await db.write(
          `INSERT INTO deals (company_id, contact_id, title, amount, stage) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
          [company_id, contact_id || null, title, amount, stage],
        )
      ).rows[0].id,
    updateDeal: async (id, { company_id, contact_id, title, amount }) =>
      (
        await db.write(
          `UPDATE deals SET company_id = $2, contact_id = $3, title = $4, amount = $5, updated_at = now() WHERE id = $1`,
          [id, company_id, contact_id || null, title, amount],
        )
      ).rowCount === 1,
    /** Moves a deal to `stage` and records the change. Resolves to false when the deal does not exist. */
    changeStage: (id, stage) =>
      db.transaction(async (client) => {
        const { rows } = await client.query('SELECT stage FROM deals WHERE id = $1 FOR UPDATE', [id]);
        if (rows.length === 0) return false;
        if (rows[0].stage === stage) return true;
        await client.query('UPDATE deals SET stage = $2, updated_at = now() WHERE id = $1', [id, stage]);
        await client.query('INSERT INTO deal_stage_changes (deal_id, from_stage, to_stage) VALUES ($1, $2, $3)', [
          id,
          rows[0].stage,
          stage,
        ]);
        return true;
      }),

    /** Each stage in order with its number of deals, total amount and its largest deals. */
    pipeline: async () => {
      const [totals, deals] = await Promise.all([
        db.read('SELECT stage, count(*)::int AS count, sum(amount)::text AS total FROM deals GROUP BY stage'),
        db.read(
          `SELECT * FROM (
             SELECT ${DEAL_COLUMNS}, row_number() OVER (PARTITION BY d.stage ORDER BY d.amount DESC, d.id) AS rank
             FROM ${DEAL_JOINS}) ranked
           WHERE rank <= ${PIPELINE_DEALS_PER_STAGE} ORDER BY amount DESC, id`,
        ),
      ]);
      return STAGES.map((stage) => {
        const row = totals.rows.find((r) => r.stage === stage);
        return {
          stage,
          count: row?.count ?? 0,
          total: row?.total ?? '0.00',
          deals: deals.rows.filter((deal) => deal.stage === stage),
        };
      });
    },

    /**
     * Companies, contacts and deals whose text contains `term` (case-insensitive). A deal is found by its title and
     * by the name of its company or contact: searching a company lists its deals.
     */
    search: async (term) => {
      const pattern = containsPattern(term);
      const [companies, contacts, deals] = await Promise.all([
        db.read(
          `SELECT id, name, website FROM companies WHERE name ILIKE $1 OR website ILIKE $1 OR notes ILIKE $1
           ORDER BY name ${NATURAL}, id LIMIT ${SHORT_LIST}`,
          [pattern],
        ),
        db.read(
          `SELECT p.*, c.name AS company_name FROM contacts p JOIN companies c ON c.id = p.company_id
           WHERE p.name ILIKE $1 OR p.email ILIKE $1 OR p.phone ILIKE $1 OR p.job_title ILIKE $1
           ORDER BY p.name ${NATURAL}, p.id LIMIT ${SHORT_LIST}`,
          [pattern],
        ),
        db.read(
          `SELECT ${DEAL_COLUMNS} FROM ${DEAL_JOINS} WHERE d.title ILIKE $1 OR c.name ILIKE $1 OR p.name ILIKE $1
           ORDER BY d.updated_at DESC, d.id DESC LIMIT ${SHORT_LIST}`,
          [pattern],
        ),
      ]);
      return { companies: companies.rows, contacts: contacts.rows, deals: deals.rows };
    },

    // Deletion. Each runs in one transaction that first locks the row it deletes: a contact or deal added to it
    // meanwhile waits, then fails on its foreign key (the form says the company no longer exists).
    /** What deleting a company takes with it: its contacts and deals (with their stage history). */
    companyDependents: (id) =>
      first(
        `SELECT (SELECT count(*) FROM contacts WHERE company_id = $1)::int AS contacts,
                (SELECT count(*) FROM deals WHERE company_id = $1)::int AS deals`,
        [id],
      ),
    /** Deletes a company, its contacts, its deals and their history. Resolves to false when it does not exist. */
    deleteCompany: (id) =>
      db.transaction(async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM companies WHERE id = $1 FOR UPDATE', [id]);
        if (rowCount === 0) return false;
        await client.query(
          'DELETE FROM deal_stage_changes WHERE deal_id IN (SELECT id FROM deals WHERE company_id = $1)',
          [id],
        );
        await client.query('DELETE FROM deals WHERE company_id = $1', [id]);
        await client.query('DELETE FROM contacts WHERE company_id = $1', [id]);
        await client.query('DELETE FROM companies WHERE id = $1', [id]);
        return true;
      }),
    /** Deletes a contact; its deals stay with their company, without a contact. */
    deleteContact: (id) =>
      db.transaction(async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE', [id]);
        if (rowCount === 0) return false;
        await client.query('UPDATE deals SET contact_id = NULL, updated_at = now() WHERE contact_id = $1', [id]);
        await client.query('DELETE FROM contacts WHERE id = $1', [id]);
        return true;
      }),
    /** Deletes a deal and its stage history. */
    deleteDeal: (id) =>
      db.transaction(async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM deals WHERE id = $1 FOR UPDATE', [id]);
        if (rowCount === 0) return false;
        await client.query('DELETE FROM deal_stage_changes WHERE deal_id = $1', [id]);
        await client.query('DELETE FROM deals WHERE id = $1', [id]);
        return true;
      }),

    // Users and sessions (see auth.js for the hashes and tokens).
    userByName: (username) => first('SELECT * FROM users WHERE username = $1', [username]),
    listUsers: async () =>
      (await db.read(`SELECT id, username, is_admin, created_at FROM users ORDER BY username ${NATURAL}, id`)).rows,
    hasUsers: async () => (await db.read('SELECT EXISTS (SELECT 1 FROM users) AS any')).rows[0].any,
    /** Creates the first user, an admin, only while there is no user at all. Resolves to whether it did. */
    insertFirstAdmin: async (username, passwordHash) =>
      (
        await db.write(
          `INSERT INTO users (username, password_hash, is_admin)
           SELECT $1, $2, true WHERE NOT EXISTS (SELECT 1 FROM users) ON CONFLICT DO NOTHING`,
          [username, passwordHash],
        )
      ).rowCount === 1,
    /** Resolves to false when the name is taken. */
    insertUser: async ({ username, passwordHash, isAdmin }) =>
      (
        await db.write(
          'INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [username, passwordHash, isAdmin],
        )
      ).rowCount === 1,
    /** Deletes a user and their sessions. */
    deleteUser: async (id) => (await db.write('DELETE FROM users WHERE id = $1', [id])).rowCount === 1,
    /** Sets a user's password and ends their other sessions. */
    setPassword: (userId, passwordHash, keepTokenHash) =>
      db.transaction(async (client) => {
        await client.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, passwordHash]);
        await client.query('DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2', [userId, keepTokenHash]);
      }),
    /** Opens a session; expired ones are cleared on the way. */
    insertSession: async ({ tokenHash, userId, csrfToken, ttlMs }) => {
      await db.write('DELETE FROM sessions WHERE expires_at < now()');
      await db.write(
        `INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')`,
        [tokenHash, userId, csrfToken, ttlMs],
      );
    },
    /** The session of a token hash with its user, when it exists and has not expired. */
    sessionByHash: (tokenHash) =>
      first(
        `SELECT s.token_hash, s.csrf_token, u.id AS user_id, u.username, u.is_admin
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()`,
        [tokenHash],
      ),
    deleteSession: (tokenHash) => db.write('DELETE FROM sessions WHERE token_hash = $1', [tokenHash]),
  };
}
