/**
 * bench/sql.ts worker for @effect/sql-pg 4.0.5: the programs of sql-common.ts on `PgClient.layer`
 * (a pool of `maxConnections`, TLS off; its defaults otherwise: statements prepared and cached by
 * name, `multiplex` off, so a transaction's statements run one at a time on its connection).
 */
import { PgClient } from "@effect/sql-pg"
import { Redacted } from "effect"
import { runWorker } from "./sql-common.ts"

runWorker("@effect/sql-pg", (url, max) =>
  PgClient.layer({ url: Redacted.make(url), ssl: false, maxConnections: max })
)
