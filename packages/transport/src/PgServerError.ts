/**
 * Server errors as values: `fromErrorFields` turns an ErrorResponse into its SQLSTATE's tagged
 * class (unknown codes into `UnknownServerError`, code kept), and `isClass` tests membership of a
 * SQLSTATE class (e.g. any IntegrityConstraintViolation, class 23). The classes themselves are
 * generated (PgServerError.generated.ts).
 */
import type { ErrorFields } from "@pgline/codec"
import {
  type ErrorsOfClass,
  type PgServerError,
  SqlStateClass,
  serverErrorClassByCode,
  UnknownServerError
} from "./PgServerError.generated.ts"

export * from "./PgServerError.generated.ts"

const optionalKeys = [
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine"
] as const

/**
 * The class generated for a code, if any. The table is a plain object: a code sent by a hostile or
 * broken server may be "toString" or "__proto__", so only its own keys count.
 */
const classOf = (code: string): typeof UnknownServerError | undefined =>
  Object.hasOwn(serverErrorClassByCode, code) ? serverErrorClassByCode[code] : undefined

/** The tagged error for an ErrorResponse's fields. */
export const fromErrorFields = (fields: ErrorFields): PgServerError => {
  const args: Record<string, string> = {
    code: fields.code,
    message: fields.message,
    severity: fields.severity
  }
  for (const key of optionalKeys) {
    const value = fields[key]
    if (value !== undefined) args[key] = value
  }
  const Class = classOf(fields.code) ?? UnknownServerError
  return new Class(args as unknown as ConstructorParameters<typeof UnknownServerError>[0]) as PgServerError
}

const tags = new Set<string>(
  Object.values(serverErrorClassByCode)
    .map((c) => (c as unknown as { readonly _tag?: string })._tag)
    .filter((t): t is string => t !== undefined)
)

/** True for any server error class (including UnknownServerError). */
export const isPgServerError = (u: unknown): u is PgServerError =>
  typeof u === "object" &&
  u !== null &&
  typeof (u as { code?: unknown }).code === "string" &&
  (u instanceof UnknownServerError || tags.has((u as { _tag?: string })._tag ?? "") || hasServerClass(u))

const hasServerClass = (u: object): boolean => {
  const code = (u as { code: string }).code
  const Class = classOf(code)
  return Class !== undefined && u instanceof Class
}

/**
 * A guard for every error of one SQLSTATE class:
 * `Effect.catchIf(isClass("IntegrityConstraintViolation"), …)`.
 */
export const isClass =
  <K extends SqlStateClass>(name: K) =>
  (u: unknown): u is ErrorsOfClass[K] =>
    isPgServerError(u) && u.code.startsWith(SqlStateClass[name])
