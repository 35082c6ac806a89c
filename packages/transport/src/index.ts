/**
 * @pgline/transport: sockets, TLS, start-up, authentication and configuration of a PostgreSQL
 * session, and the typed errors they raise (server SQLSTATE classes included).
 */
export * from "./PgClientError.ts"
export * from "./PgServerError.ts"
export * as Session from "./Session.ts"
export * as PgConfig from "./PgConfig.ts"
export { AuthenticationError } from "./internal/auth/AuthenticationError.ts"
