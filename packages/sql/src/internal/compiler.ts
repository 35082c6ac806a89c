/**
 * The statement compiler for effect/sql's `sql` template on PostgreSQL: `$n` placeholders,
 * identifiers in double quotes (a dot separates schema and name, a quote is doubled), insert and
 * update helpers (`update … from (values …) as alias(columns)`), and JSON values (`PgSql.json`)
 * sent as JSON text in `$n::jsonb`, so the server types them whatever the context. It only builds text and a
 * parameter list; pgline encodes the parameters for the types the server describes.
 */
import * as Statement from "effect/sql/Statement"

/** A JSON document as a statement value (`PgSql.json`): its kind for the compiler's onCustom. */
export interface PgJson extends Statement.Custom<"PgJson", unknown> {}
const PgJson = Statement.custom<PgJson>("PgJson")

/** `value` as a jsonb parameter: `sql\`insert into t ${sql.insert({ doc: PgSql.json(x) })}\``. */
export const json = (value: unknown): Statement.Fragment => Statement.fragment([PgJson(value)])

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
      // As JSON text: a string value must arrive as a JSON string, not as the document's text.
      return [`${placeholder(undefined)}::jsonb`, [JSON.stringify(value)]]
    }
  })
}
