/**
 * bench/sql.ts worker for @pgline/sql: the programs of sql-common.ts on `PgSql.layer` (a pgline
 * pool of `max` connections, sslmode disable; its defaults otherwise: statements prepared once per
 * connection, concurrent statements pipelined, pgline's own `withTransaction`).
 */
import { PgSql } from "@pgline/sql"
import { runWorker } from "./sql-common.ts"

runWorker("@pgline/sql", (url, max) => PgSql.layer({ url, sslmode: "disable", max }))
