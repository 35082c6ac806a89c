/**
 * TempPostgres: a throwaway PostgreSQL 18 for the codec's integration tests and capture script,
 * started through @pgline/testing's embedded server (which handles running as an unprivileged
 * user, free ports and cleanup). Plain async: the codec's tests do not use Effect. The superuser
 * authenticates by trust over TCP, which is all RawSession speaks.
 */
// Imported by path, not as a workspace dependency: @pgline/testing depends on this package.
import { startServer } from "../../../testing/src/index.ts"

export interface TempPostgres {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
  stop(): Promise<void>
}

export const startTempPostgres = async (): Promise<TempPostgres> => {
  const handle = await startServer({ version: 18 })
  return {
    host: handle.info.host,
    port: handle.info.port,
    user: handle.info.user,
    database: handle.info.database,
    stop: handle.stop
  }
}
