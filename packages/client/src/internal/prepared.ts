/**
 * The value of a named prepared statement (PreparedStatement) over its record on one connection,
 * shared by pg.prepare and a pipeline's prepare: its description as last read, and execute /
 * describe / close run where `on` says (the reserved connection while its lease lasts, the
 * transaction's connection in its turn, a pipeline's connection). A pipeline finds the record and
 * connection behind a value through `internalsOf`, to bind by name inside a segment.
 */
import type { PgServerError } from "@pgline/transport"
import { Effect } from "effect"
import { type PgClientError, StatementRejected } from "../PgClientError.ts"
import type { PreparedStatement } from "../PreparedStatement.ts"
import type { QueryResult } from "../QueryResult.ts"
import type { Connection, Prepared } from "./Connection.ts"
import { type RunError, runCloseNamed, runDescribeNamed, runNamed } from "./run.ts"

/** Runs an operation on a named statement's connection (checking its lease or transaction turn). */
export type RunOn = <A>(f: (conn: Connection) => Effect.Effect<A, RunError>) => Effect.Effect<A, RunError>

const Internals: unique symbol = Symbol.for("@pgline/client/PreparedStatement") as never

interface Internals {
  readonly prepared: Prepared
  readonly conn: Connection
}

export const closedStatement = (name: string) =>
  new StatementRejected({
    reason: "Closed",
    message: `the prepared statement ${JSON.stringify(name)} was closed`
  })

let generated = 0

/** The name to prepare under: the user's (checked), or a fresh pgline_named_N. */
export const statementName = (name: string | undefined): string | StatementRejected => {
  if (name === undefined) return `pgline_named_${++generated}`
  if (name === "")
    return new StatementRejected({
      reason: "InvalidText",
      message: "a prepared statement's name cannot be empty (that is the unnamed statement)"
    })
  if (name.startsWith("pgline_"))
    return new StatementRejected({
      reason: "InvalidText",
      message: `names starting with pgline_ are the driver's own: ${JSON.stringify(name)}`
    })
  if (name.includes("\u0000") || !name.isWellFormed())
    return new StatementRejected({ reason: "InvalidText", message: "the statement name cannot be sent" })
  // SQL reads a longer name cut to 63 bytes (DEALLOCATE, EXECUTE): the two would name different
  // statements.
  if (Buffer.byteLength(name, "utf8") > 63)
    return new StatementRejected({
      reason: "InvalidText",
      message: `a prepared statement's name is at most 63 bytes (SQL cuts longer names): ${JSON.stringify(name.slice(0, 20))}…`
    })
  return name
}

/** The public value of a named statement: its description now, and operations on its connection. */
export const preparedStatement = (p: Prepared, conn: Connection, on: RunOn): PreparedStatement => {
  const value: PreparedStatement & { [Internals]: Internals } = {
    [Internals]: { prepared: p, conn },
    name: p.name,
    text: p.text,
    parameterTypes: p.parameterTypes ?? [],
    fields: p.fieldInfo ?? [],
    execute: <Row>(params: ReadonlyArray<unknown> = []) =>
      on((c) =>
        c.namedStatement(p.name) === p ? runNamed(c, p, params) : Effect.fail(closedStatement(p.name))
      ) as Effect.Effect<QueryResult<Row>, PgServerError | PgClientError>,
    describe: on((c) =>
      c.namedStatement(p.name) === p
        ? Effect.map(runDescribeNamed(c, p), (q) => preparedStatement(q, conn, on))
        : Effect.fail(closedStatement(p.name))
    ),
    close: on((c) => (c.namedStatement(p.name) === p ? runCloseNamed(c, p.name) : Effect.void))
  }
  return value
}

/** The record and connection behind a PreparedStatement made here; undefined for anything else. */
export const internalsOf = (u: unknown): Internals | undefined =>
  typeof u === "object" && u !== null && Internals in u
    ? (u as { [Internals]: Internals })[Internals]
    : undefined
