/**
 * @pgline/transport: sockets, TLS, start-up, authentication and configuration of a PostgreSQL
 * session, and the typed errors they raise. Most applications use `@pgline/client`, which builds on
 * this package and re-exports what they need from it.
 *
 * The server's errors are one tagged class per SQLSTATE; this entry point has their union
 * (`PgServerError`), the guards (`isPgServerError`, `isClass`), `SqlStateClass` and
 * `fromErrorFields`, and `@pgline/transport/errors` has every class.
 */
export * from "./PgClientError.ts"
export {
  type ErrorsOfClass,
  fromErrorFields,
  isClass,
  isPgServerError,
  type PgServerError,
  SqlStateClass,
  UnknownServerError
} from "./PgServerError.ts"
export * as Session from "./Session.ts"
export * as PgConfig from "./PgConfig.ts"
