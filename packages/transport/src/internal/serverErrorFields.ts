/**
 * The fields every server error class carries: the SQLSTATE and every ErrorResponse field the
 * server may send (absent ones stay undefined). Kept apart from the generated classes so the
 * generator only lists names.
 */
import { Schema } from "effect"

const optional = Schema.optional(Schema.String)

export const serverErrorFields = {
  code: Schema.String,
  message: Schema.String,
  severity: Schema.String,
  detail: optional,
  hint: optional,
  position: optional,
  internalPosition: optional,
  internalQuery: optional,
  where: optional,
  schema: optional,
  table: optional,
  column: optional,
  dataType: optional,
  constraint: optional,
  file: optional,
  line: optional,
  routine: optional
}
