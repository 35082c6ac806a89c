/**
 * SqlState: lookups over the generated SQLSTATE table (SqlState.generated.ts, rebuilt by
 * `pnpm generate` from PostgreSQL's errcodes.txt). Data and pure functions only; the client's own
 * generator turns the table into one Effect tagged-error class per code. Codes the table does not
 * know (newer servers, extensions, PL/pgSQL RAISE with a custom SQLSTATE) are valid: every helper
 * accepts them and still answers class questions from their first two characters.
 */
import {
  type SqlStateClassInfo,
  SqlStateClasses,
  type SqlStateInfo,
  SqlStates
} from "./SqlState.generated.ts"

export * from "./SqlState.generated.ts"

const byCode = new Map<string, SqlStateInfo>(SqlStates.map((s) => [s.code, s]))
const byName = new Map<string, SqlStateInfo>(SqlStates.map((s) => [s.name, s]))
const byCondition = new Map<string, SqlStateInfo>()
for (const s of SqlStates) if (!byCondition.has(s.condition)) byCondition.set(s.condition, s)
const classes = new Map<string, SqlStateClassInfo>(SqlStateClasses.map((c) => [c.code, c]))

/**
 * Lookups over the SQLSTATE table by code, class name or condition, and class tests that also
 * work for codes the table does not know. Pure functions; nothing fails.
 *
 * @example
 * ```ts
 * SqlState.lookup("23505")?.name // "UniqueViolation"
 * SqlState.isClass("23505", "23") // true
 * ```
 */
export const SqlState = {
  /** The entry of a code, or undefined for a code this table does not know. */
  lookup: (code: string): SqlStateInfo | undefined => byCode.get(code),
  /** The entry whose tagged-error class name (`_tag`) is `name`. */
  byName: (name: string): SqlStateInfo | undefined => byName.get(name),
  /** The first entry with this condition name (a few names occur in two classes; see the generator). */
  byCondition: (condition: string): SqlStateInfo | undefined => byCondition.get(condition),
  /** The class code: the first two characters. */
  classOf: (code: string): string => code.slice(0, 2),
  /** The class entry of a code (also for unknown codes of a known class). */
  classInfo: (code: string): SqlStateClassInfo | undefined => classes.get(code.slice(0, 2)),
  /** Whether `code` is in class `classCode` (`isClass("23505", "23")`). */
  isClass: (code: string, classCode: string): boolean => code.length === 5 && code.startsWith(classCode),
  /** Class 00, 01 and 02 are not errors: success, warning, no data. */
  isError: (code: string): boolean =>
    !(code.startsWith("00") || code.startsWith("01") || code.startsWith("02")),
  /**
   * 40001 serialization_failure and 40P01 deadlock_detected: the transaction can be retried as
   * a whole (the usual retry loop's test).
   */
  isRetryable: (code: string): boolean => code === "40001" || code === "40P01",
  all: SqlStates,
  classes: SqlStateClasses
} as const
