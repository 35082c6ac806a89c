/**
 * effect/sql's driver-facing `Connection` over pgline's statement API (`PgStatements`: the pool's
 * `pg`, or a reserved `PgConnection`). Every call is one pgline statement, so pgline decides the
 * connection: inside pgline's (or PgSql's) withTransaction the transaction's, inside a pipeline
 * scope the pipeline's, otherwise a pooled one, with concurrent calls pipelined. Streams are
 * pgline's row streams (portal reads with back-pressure), not buffered arrays.
 *
 * What it deliberately does not do: choose connections, run transaction control (PgSql's
 * withTransaction is pgline's), or convert values (pgline's type registry decodes rows).
 */
import { type PgStatements, Statement } from "@pgline/client"
import { Effect, Stream } from "effect"
import type { Connection } from "effect/sql/SqlConnection"
import { toSqlError } from "./errors.ts"

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** Whether an array holds undefined, at any depth of nested arrays. */
const holdsUndefined = (values: ReadonlyArray<unknown>): boolean => {
  for (const v of values) if (v === undefined || (Array.isArray(v) && holdsUndefined(v))) return true
  return false
}

// Array.from, not map: map skips an array's holes ([1, , 3]), which read as undefined.
const nullFor = (v: unknown): unknown =>
  v === undefined ? null : Array.isArray(v) && holdsUndefined(v) ? Array.from(v, nullFor) : v

/**
 * effect/sql treats an undefined value as NULL (`${user.nickname}` of an optional field, an
 * element of an array parameter), where pgline refuses undefined: the parameters with each
 * undefined, inside arrays too, as null (the same array when there is none).
 */
const withNulls = (params: ReadonlyArray<unknown>): ReadonlyArray<unknown> =>
  holdsUndefined(params) ? params.map(nullFor) : params

const unprepared = { prepare: false } as const

/** The effect/sql connection for `pg`; `chunkSize` is the row streams' portal fetch size. */
export const makeConnection = (pg: PgStatements, chunkSize: number): Connection => {
  const run = (sql: string, params: ReadonlyArray<unknown>, operation: string, prepare?: boolean) =>
    Effect.mapError(pg.query(sql, withNulls(params), prepare === false ? unprepared : undefined), (e) =>
      toSqlError(e, operation)
    )
  const values = (sql: string, params: ReadonlyArray<unknown>, operation: string, prepare?: boolean) =>
    Effect.mapBoth(pg.queryValues(sql, withNulls(params), prepare === false ? unprepared : undefined), {
      onFailure: (e) => toSqlError(e, operation),
      onSuccess: (r) => r.rows
    })
  const rows = (
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: TransformRows,
    operation: string,
    prepare?: boolean
  ) =>
    Effect.map(run(sql, params, operation, prepare), (r) =>
      transformRows === undefined ? r.rows : transformRows(r.rows as ReadonlyArray<object>)
    )
  return {
    execute: (sql, params, transformRows) => rows(sql, params, transformRows, "execute"),
    executeRaw: (sql, params) => run(sql, params, "executeRaw"),
    executeValues: (sql, params) => values(sql, params, "executeValues"),
    // The unnamed statement, as sql-pg's: parsed and planned for this call, not cached.
    executeUnprepared: (sql, params, transformRows) =>
      rows(sql, params, transformRows, "executeUnprepared", false),
    executeValuesUnprepared: (sql, params) => values(sql, params, "executeValuesUnprepared", false),
    executeStream: (sql, params, transformRows) => {
      const statement = new Statement<Record<string, unknown>>(sql, withNulls(params), (t, v) =>
        pg.query(t, v)
      )
      const stream = Stream.mapError(pg.stream(statement, { chunkSize }), (e) =>
        toSqlError(e, "executeStream")
      )
      return transformRows === undefined
        ? stream
        : Stream.mapArray(stream, (chunk) => transformRows(chunk) as typeof chunk)
    }
  }
}
