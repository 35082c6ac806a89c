/**
 * Optional Schema decoding of rows: `pg.sql\`…\`.pipe(decodeRows(User))` checks and transforms
 * every row with an Effect Schema and fails with `RowSchemaError` (naming the row) when one does
 * not fit. Without it rows are plain objects of the registry's JS values.
 */
import { Effect, Schema } from "effect"
import type { QueryResult } from "./QueryResult.ts"

/** A row did not match the schema given to `decodeRows`; the statement did run. */
export class RowSchemaError extends Schema.TaggedError<RowSchemaError>()("RowSchemaError", {
  message: Schema.String,
  /** 0-based index of the first row that failed. */
  row: Schema.Number
}) {}

/**
 * Decodes every row of a statement's result with an Effect Schema, returning the decoded rows.
 * Fails with `RowSchemaError` (its `row` is the index of the first row that does not fit; the
 * statement did run); the statement's own errors pass through unchanged.
 *
 * @example
 * ```ts
 * const User = Schema.Struct({ id: Schema.Number, name: Schema.String })
 * const users = yield* pg.sql`select id, name from users`.pipe(decodeRows(User))
 * // ReadonlyArray<{ readonly id: number; readonly name: string }>
 * ```
 */
export const decodeRows =
  <S extends Schema.Constraint>(schema: S) =>
  <E, R>(
    self: Effect.Effect<QueryResult<any>, E, R>
  ): Effect.Effect<ReadonlyArray<S["Type"]>, E | RowSchemaError, R | S["DecodingServices"]> => {
    const decode = Schema.decodeUnknownEffect(schema)
    return Effect.flatMap(self, (result) =>
      Effect.forEach(result.rows, (row, index) =>
        Effect.mapError(decode(row), (error) => new RowSchemaError({ message: error.message, row: index }))
      )
    )
  }
