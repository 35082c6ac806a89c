/**
 * The one error every configuration step raises. It lives here (not in PgConfig.ts) so the
 * private parsers can raise it without importing the public module; PgConfig.ts re-exports it.
 */
import { Schema } from "effect"

/** Why a configuration was refused. */
export const PgConfigErrorReason = Schema.Literals([
  /** The connection string (URI or keyword/value) is malformed. */
  "syntax",
  /** A keyword (or URI query parameter) libpq does not know. */
  "unknown-key",
  /** A value is not one the keyword accepts (enum, integer, address…). */
  "invalid-value",
  /** Two settings contradict each other (host/port counts, sslmode vs sslnegotiation…). */
  "conflict",
  /** A valid libpq setting pgline cannot honour (gssencmode=require, non-UTF-8 encoding…). */
  "unsupported",
  /** `service=name` names a service no service file defines. */
  "service-not-found",
  /** A service file or password file could not be read or parsed. */
  "file",
  /** The ConfigProvider holding the environment failed to answer. */
  "environment"
])
export type PgConfigErrorReason = typeof PgConfigErrorReason.Type

/**
 * An invalid setting, a combination libpq refuses, an unknown keyword or an unreadable service file;
 * `key` names the libpq keyword. The message never shows a password.
 *
 * @example
 * ```ts
 * PgClient.layer("sslmode=sometimes") // fails with PgConfigError { key: "sslmode", reason: "invalid-value" }
 * ```
 */
export class PgConfigError extends Schema.TaggedError<PgConfigError>()("PgConfigError", {
  /** The offending libpq keyword (`sslmode`, `port`, …), or "connection string" for syntax errors. */
  key: Schema.String,
  message: Schema.String,
  reason: PgConfigErrorReason
}) {}

export const configError = (key: string, reason: PgConfigErrorReason, message: string): PgConfigError =>
  new PgConfigError({ key, reason, message })
