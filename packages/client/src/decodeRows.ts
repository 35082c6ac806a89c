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
