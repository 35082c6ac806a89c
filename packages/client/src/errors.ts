/**
 * `@pgline/client/errors`: every server error class, one per SQLSTATE of PostgreSQL 14–18, named
 * after its condition (`UniqueViolation` for 23505, `UndefinedTable` for 42P01, …), with
 * `UnknownServerError` for a code this version does not know. Each is a tagged error whose `_tag`
 * is its class name, so most code needs none of them: `Effect.catchTag("UniqueViolation", …)`
 * and `isClass("IntegrityConstraintViolation")` (from `@pgline/client`) work on the tags. Import a
 * class from here to construct one (in a test) or for `instanceof`.
 *
 * Also here: `ErrorsOfClass` (the error type of each SQLSTATE class), `serverErrorClassByCode`
 * (code → class) and `fromErrorFields` (an ErrorResponse's fields → its error value).
 *
 * @example
 * ```ts
 * import { UniqueViolation } from "@pgline/client/errors"
 *
 * const duplicate = new UniqueViolation({ code: "23505", message: "duplicate key", severity: "ERROR" })
 * duplicate._tag // "UniqueViolation"
 * ```
 */
export * from "@pgline/transport/errors"
