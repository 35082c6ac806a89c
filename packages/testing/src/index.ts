/**
 * @pgline/testing: a real PostgreSQL for tests and the demo (`PgServer`), a primary with a
 * streaming hot standby (`PgReplicaPair`), a latency proxy, a bare loopback listener, and a
 * scripted fake server for what a real one will not do (`FakeServer`).
 */
export * from "./PgServer.ts"
export * from "./PgReplicaPair.ts"
export * from "./LatencyProxy.ts"
export * from "./LocalServer.ts"
export * from "./FakeServer.ts"
export * from "./PgBouncer.ts"
