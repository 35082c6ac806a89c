/**
 * @pgline/testing: a real PostgreSQL for tests and the demo. See `PgServer`.
 */
export * from "./PgServer.ts"
export * from "./LatencyProxy.ts"
export * from "./LocalServer.ts"
