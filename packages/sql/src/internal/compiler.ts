/**
 * The statement compiler for effect/sql's `sql` template on PostgreSQL: `$n` placeholders,
 * identifiers in double quotes (a dot separates schema and name, a quote is doubled), insert and
 * update helpers (`update … from (values …) as alias(columns)`), and JSON values (`PgSql.json`)
 * bound as parameters declared jsonb, so the server types them whatever the context. It only
 * builds text and a parameter list; pgline encodes the parameters.
 */
import * as Statement from "effect/sql/Statement"

/** A JSON document as a statement value (`PgSql.json`): its kind for the compiler's onCustom. */
export interface PgJson extends Statement.Custom<"PgJson", unknown> {}
const PgJson = Statement.custom<PgJson>("PgJson")

/** `value` as a jsonb parameter: `sql\`insert into t ${sql.insert({ doc: PgSql.json(x) })}\``. */
export const json = (value: unknown): Statement.Fragment => Statement.fragment([PgJson(value)])

/**
 * A JSON document as a parameter: pgline declares an object it has no other type for as jsonb and
 * encodes it with JSON.stringify, which serialises this as the document itself. The type travels
 * with the value, so it holds where effect/sql keeps only the value and drops the text around its
 * placeholder (the insert and update helpers); a value JSON cannot carry (a bigint) fails the
 * statement with pgline's ParameterError when it is encoded.
 */
class JsonParameter {
  readonly document: unknown
  constructor(document: unknown) {
    this.document = document
  }
  toJSON(key: string): unknown {
    // JSON.stringify calls one toJSON per value: the document's own (a Date's) must still run.
    const document = this.document as { toJSON?: (key: string) => unknown } | null
    return typeof document?.toJSON === "function" ? document.toJSON(key) : document
  }
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`
/** "schema.table" → "schema"."table"; a name that needs a literal dot goes through sql.literal. */
const escapeIdentifier = (name: string): string => name.split(".").map(quote).join(".")

export const makeCompiler = (
  transformQueryNames: ((name: string) => string) | undefined,
  transformJson: boolean
): Statement.Compiler => {
  const transformValue =
    transformJson && transformQueryNames !== undefined
      ? Statement.defaultTransforms(transformQueryNames).value
      : undefined
  return Statement.makeCompiler<PgJson>({
    dialect: "pg",
    placeholder: (index) => `$${index}`,
    onIdentifier:
      transformQueryNames === undefined
        ? escapeIdentifier
        : (name, withoutTransform) => escapeIdentifier(withoutTransform ? name : transformQueryNames(name)),
    onRecordUpdate: (placeholders, alias, columns, values, returning) => [
      `(values ${placeholders}) as ${alias}${columns}${returning === undefined ? "" : ` returning ${returning[0]}`}`,
      returning === undefined ? values.flat() : [...values.flat(), ...returning[1]]
    ],
    onCustom: (custom, placeholder, withoutTransform) => {
      const value =
        withoutTransform || transformValue === undefined ? custom.paramA : transformValue(custom.paramA)
      // A string value arrives as a JSON string, not as the document's text.
      return [placeholder(undefined), [new JsonParameter(value)]]
    }
  })
}
