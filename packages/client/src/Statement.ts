/**
 * Statements built with the `sql` tagged template: the text gets `$1…$n` placeholders and the
 * values are always bound as parameters, never spliced into the text. Fragments nest (their
 * placeholders are renumbered), identifiers are quoted by `sql.id`, value lists expand with
 * `sql.in`, and only `sql.unsafe` puts raw text in (its name says what it is).
 *
 * A Statement is an Effect (running it is `query(text, values)` on the client that made it) and a
 * value a pipeline accepts. It does not parse SQL.
 */
import { Effect, Effectable } from "effect"
import type { PgServerError } from "@pgline/transport"
import { type PgClientError, StatementRejected } from "./PgClientError.ts"
import type { QueryResult } from "./QueryResult.ts"

const FragmentTypeId: unique symbol = Symbol.for("@pgline/client/Fragment") as never

/**
 * A piece of SQL text with its own bound values; interpolating it into a `sql` template inlines it
 * (its placeholders are renumbered). Made by `sql.id`, `sql.in`, `sql.fragment` and `sql.unsafe`;
 * an invalid one (an empty identifier, an empty `in` list) makes the statement that uses it fail
 * with `StatementRejected` when it runs, before anything is sent.
 *
 * @example
 * ```ts
 * const active = pg.sql.fragment`active = ${true}`
 * yield* pg.sql`select id from users where ${active} and id > ${100}` // … where active = $1 and id > $2
 * ```
 */
export class Fragment {
  readonly [FragmentTypeId] = FragmentTypeId
  /** Text pieces; value i sits between strings[i] and strings[i + 1]. */
  readonly strings: ReadonlyArray<string>
  readonly values: ReadonlyArray<unknown>
  /** Why this fragment cannot be SQL (an identifier with NUL, an empty `in` list), if it cannot. */
  readonly invalid: string | undefined
  constructor(strings: ReadonlyArray<string>, values: ReadonlyArray<unknown>, invalid?: string) {
    this.strings = strings
    this.values = values
    this.invalid = invalid
  }
}

/** True for a `Fragment` (from this or another copy of the package). */
export const isFragment = (u: unknown): u is Fragment =>
  typeof u === "object" && u !== null && FragmentTypeId in u

/** Flattens a template (with nested fragments) into text with $n placeholders and a value list. */
export const compile = (
  strings: ReadonlyArray<string>,
  values: ReadonlyArray<unknown>
): { text: string; values: Array<unknown>; invalid: string | undefined } => {
  const out: Array<unknown> = []
  let text = ""
  let invalid: string | undefined
  const walk = (ss: ReadonlyArray<string>, vs: ReadonlyArray<unknown>) => {
    for (let i = 0; i < ss.length; i++) {
      text += ss[i]
      if (i < vs.length) {
        const v = vs[i]
        if (isFragment(v)) {
          invalid ??= v.invalid
          walk(v.strings, v.values)
        } else {
          out.push(v)
          text += `$${out.length}`
        }
      }
    }
  }
  walk(strings, values)
  return { text, values: out, invalid }
}

/** Quotes an SQL identifier (doubling embedded quotes). */
export const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`

/** Why a name cannot be an identifier, if it cannot. */
const invalidIdentifier = (name: string): string | undefined =>
  name.includes("\u0000")
    ? "sql.id: an identifier cannot contain a NUL character"
    : name === ""
      ? "sql.id: an identifier cannot be empty"
      : !name.isWellFormed()
        ? "sql.id: the identifier holds a lone UTF-16 surrogate"
        : undefined

/** What running a statement can fail with: the server's SQLSTATE classes and the client's errors. */
export type StatementError = PgServerError | PgClientError

/**
 * A bound statement: text with `$n` placeholders plus its values, made by the `sql` template. It is
 * an Effect: yielding it runs it on the client (or reserved connection) whose `sql` made it, inside
 * the caller's transaction or pipeline if there is one. A pipeline's `execute` and `pg.all` accept
 * it too. It fails like `query`: a server error as its SQLSTATE class, or a client error
 * (`StatementRejected` when built from an invalid fragment, `ParameterError`, `ConnectionLost`, …).
 *
 * @example
 * ```ts
 * const byName = pg.sql<{ id: number }>`select id from users where name = ${"Ada"}`
 * byName.text // "select id from users where name = $1"
 * const { rows } = yield* byName
 * ```
 */
export class Statement<Row = Record<string, unknown>> extends Effectable.Class<
  QueryResult<Row>,
  StatementError
> {
  readonly text: string
  readonly values: ReadonlyArray<unknown>
  /** Why the statement cannot be sent (from an invalid fragment), if it cannot: running it fails typed. */
  readonly invalid: string | undefined
  private readonly run: (
    text: string,
    values: ReadonlyArray<unknown>
  ) => Effect.Effect<QueryResult<Row>, StatementError>
  constructor(
    text: string,
    values: ReadonlyArray<unknown>,
    run: (text: string, values: ReadonlyArray<unknown>) => Effect.Effect<QueryResult<Row>, StatementError>,
    invalid?: string
  ) {
    super()
    this.text = text
    this.values = values
    this.run = run
    this.invalid = invalid
  }
  asEffect(): Effect.Effect<QueryResult<Row>, StatementError> {
    const rejected = rejectInvalid(this)
    return rejected !== undefined ? Effect.fail(rejected) : this.run(this.text, this.values)
  }
  /** The same statement with a row type asserted (no runtime check; `decodeRows` is one). */
  as<R>(): Statement<R> {
    return this as unknown as Statement<R>
  }
}

/**
 * The `sql` template of a client (`pg.sql`): every interpolated value becomes a bound parameter,
 * every interpolated `Fragment` is inlined. Building a statement never fails and sends nothing;
 * running it does (see `Statement`).
 *
 * @example
 * ```ts
 * const { sql } = yield* PgClient
 * yield* sql`update ${sql.id("users")} set seen = now() where id in (${sql.in([1, 2, 3])})`
 * ```
 */
export interface SqlTag {
  <Row = Record<string, unknown>>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ): Statement<Row>
  /** A quoted identifier, or a dotted path from an array: sql.id(["public", "users"]) → "public"."users". */
  readonly id: (name: string | ReadonlyArray<string>) => Fragment
  /** A comma-separated list of bound values: `where id in (${sql.in([1, 2])})` → in ($1,$2). */
  readonly in: (values: ReadonlyArray<unknown>) => Fragment
  /** A reusable fragment with bound values, to interpolate into a statement. */
  readonly fragment: (strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) => Fragment
  /** Raw SQL text, inserted as is. Never pass user input. */
  readonly unsafe: (text: string) => Fragment
}

/** The typed refusal for a statement built from an invalid fragment (nothing is sent). */
export const rejectInvalid = (statement: Statement<any>): StatementRejected | undefined =>
  statement.invalid === undefined
    ? undefined
    : new StatementRejected({ reason: "InvalidText", message: statement.invalid })

/** Builds the `sql` template of a client around its `query` (used by PgClient; not for applications). */
export const makeSqlTag = (
  run: (text: string, values: ReadonlyArray<unknown>) => Effect.Effect<QueryResult<any>, StatementError>
): SqlTag => {
  const tag = ((strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) => {
    const compiled = compile(strings, values)
    return new Statement(compiled.text, compiled.values, run, compiled.invalid)
  }) as SqlTag
  const mutable = tag as unknown as Record<string, unknown>
  mutable["id"] = (name: string | ReadonlyArray<string>) => {
    const parts = typeof name === "string" ? [name] : name
    const invalid =
      parts.length === 0
        ? "sql.id: an empty path is not an identifier"
        : parts.map(invalidIdentifier).find((m) => m)
    return new Fragment([parts.map(quoteIdentifier).join(".")], [], invalid)
  }
  mutable["in"] = (values: ReadonlyArray<unknown>) =>
    values.length === 0
      ? new Fragment([""], [], "sql.in needs at least one value (an empty IN list is not SQL)")
      : new Fragment(["", ...values.slice(1).map(() => ","), ""], values)
  mutable["fragment"] = (strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) =>
    new Fragment([...strings], values)
  mutable["unsafe"] = (text: string) => new Fragment([text], [])
  return tag
}
