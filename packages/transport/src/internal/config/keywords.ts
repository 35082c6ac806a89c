/**
 * The libpq connection keywords pgline accepts, with the environment variable that supplies each
 * when nothing else does. One table drives the connection-string parsers (unknown keyword → error,
 * as libpq does), the service-file reader and the environment reader.
 *
 * Deliberately absent: `tty` (removed from libpq in PostgreSQL 14) and the OAuth keywords of
 * PostgreSQL 18 (pgline does not implement OAuth); both are rejected as unknown keys.
 */

export interface KeywordSpec {
  readonly keyword: string
  /** The PG* variable consulted when no connection string, option or service sets the keyword. */
  readonly envVar: string | undefined
}

const spec = (keyword: string, envVar?: string): KeywordSpec => ({ keyword, envVar })

export const KEYWORDS: ReadonlyArray<KeywordSpec> = [
  spec("service", "PGSERVICE"),
  spec("servicefile", "PGSERVICEFILE"),
  spec("host", "PGHOST"),
  spec("hostaddr", "PGHOSTADDR"),
  spec("port", "PGPORT"),
  spec("dbname", "PGDATABASE"),
  spec("user", "PGUSER"),
  spec("password", "PGPASSWORD"),
  spec("passfile", "PGPASSFILE"),
  spec("require_auth", "PGREQUIREAUTH"),
  spec("channel_binding", "PGCHANNELBINDING"),
  spec("connect_timeout", "PGCONNECT_TIMEOUT"),
  spec("client_encoding", "PGCLIENTENCODING"),
  spec("options", "PGOPTIONS"),
  spec("application_name", "PGAPPNAME"),
  spec("fallback_application_name"),
  spec("keepalives"),
  spec("keepalives_idle"),
  spec("keepalives_interval"),
  spec("keepalives_count"),
  spec("tcp_user_timeout"),
  spec("replication"),
  spec("gssencmode", "PGGSSENCMODE"),
  spec("sslmode", "PGSSLMODE"),
  spec("requiressl", "PGREQUIRESSL"),
  spec("sslnegotiation", "PGSSLNEGOTIATION"),
  spec("sslcompression", "PGSSLCOMPRESSION"),
  spec("sslcert", "PGSSLCERT"),
  spec("sslkey", "PGSSLKEY"),
  spec("sslkeylogfile"),
  spec("sslpassword"),
  spec("sslcertmode", "PGSSLCERTMODE"),
  spec("sslrootcert", "PGSSLROOTCERT"),
  spec("sslcrl", "PGSSLCRL"),
  spec("sslcrldir", "PGSSLCRLDIR"),
  spec("sslsni", "PGSSLSNI"),
  spec("requirepeer", "PGREQUIREPEER"),
  spec("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
  spec("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
  spec("min_protocol_version", "PGMINPROTOCOLVERSION"),
  spec("max_protocol_version", "PGMAXPROTOCOLVERSION"),
  spec("krbsrvname", "PGKRBSRVNAME"),
  spec("gsslib", "PGGSSLIB"),
  spec("gssdelegation", "PGGSSDELEGATION"),
  spec("target_session_attrs", "PGTARGETSESSIONATTRS"),
  spec("load_balance_hosts", "PGLOADBALANCEHOSTS")
]

const byName = new Map(KEYWORDS.map((k) => [k.keyword, k]))

export const isKeyword = (name: string): boolean => byName.has(name)

/**
 * Environment variables read besides the keywords' own: they are not keywords, but libpq consults
 * them (PGSYSCONFDIR for the system service file; PGTZ, PGDATESTYLE, PGGEQO become startup
 * parameters; HOME locates ~/.pgpass and ~/.pg_service.conf).
 */
export const EXTRA_ENV_VARS: ReadonlyArray<string> = ["PGSYSCONFDIR", "PGTZ", "PGDATESTYLE", "PGGEQO"]

export const ENV_VARS: ReadonlyArray<string> = [
  ...KEYWORDS.flatMap((k) => (k.envVar === undefined ? [] : [k.envVar])),
  ...EXTRA_ENV_VARS
]

/** A keyword's value and where it came from (for error messages and precedence). */
export interface Setting {
  readonly value: string
  readonly source: string
}

/** Keyword → setting, in libpq keyword names. Later writes win, as in libpq. */
export type ConnInfo = Map<string, Setting>
