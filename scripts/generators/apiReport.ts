/**
 * Generates api/<package>.api.md: the public API of each publishable package, read from the
 * declarations the build emitted (packages/<name>/dist/*.d.ts, so `pnpm run build` must run first).
 * For every entry point in the package's `exports` (internal/ and package.json excepted) it follows
 * the re-exports and prints each exported declaration without its doc comments, grouped by the
 * module that declares it; names re-exported from another @pgline package are listed as such (that
 * package's report has their declarations). A change to a public signature changes the report, so
 * `pnpm generate:check` fails until the report is regenerated and the change is reviewed.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The publishable packages. */
const packages = ["codec", "transport", "client", "sql", "cli", "testing"] as const

interface Statement {
  readonly text: string
  /** The declared name, for declarations. */
  readonly name: string | undefined
  readonly exported: boolean
}

type Item =
  | { readonly kind: "local"; readonly name: string; readonly module: string }
  | { readonly kind: "namespace"; readonly name: string; readonly module: string }
  | { readonly kind: "external"; readonly name: string; readonly from: string; readonly as: string }
  | { readonly kind: "externalStar"; readonly from: string }

const declaration =
  /^(export\s+)?(?:declare\s+)?(?:abstract\s+)?(?:const|let|var|function|class|interface|type|enum|namespace)\s+([A-Za-z_$][\w$]*)/

/** Splits a .d.ts into top-level statements (tsc indents everything nested), comments dropped. */
const statements = (source: string): Array<Statement> => {
  const text = source.replace(/\/\*\*[\s\S]*?\*\//g, "").replace(/^\/\/.*$/gm, "")
  const out: Array<Statement> = []
  let current: Array<string> = []
  const flush = () => {
    if (current.length === 0) return
    const body = current.join("\n").trimEnd()
    const match = declaration.exec(body)
    out.push({ text: body, name: match?.[2], exported: body.startsWith("export") })
    current = []
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    const continues = /^\s/.test(line) || /^[}\])]/.test(line)
    if (!continues) flush()
    current.push(line.trimEnd())
  }
  flush()
  return out
}

const cache = new Map<string, Array<Statement>>()
const read = (file: string): Array<Statement> => {
  let parsed = cache.get(file)
  if (parsed === undefined) {
    if (!existsSync(file)) throw new Error(`${relative(root, file)} is missing: run \`pnpm run build\` first`)
    parsed = statements(readFileSync(file, "utf8"))
    cache.set(file, parsed)
  }
  return parsed
}

const target = (from: string, spec: string): string => join(dirname(from), spec.replace(/\.[jt]s$/, ".d.ts"))

const specifiers = (list: string): Array<{ name: string; as: string }> =>
  list
    .split(",")
    .map((s) => s.trim().replace(/^type\s+/, ""))
    .filter((s) => s.length > 0)
    .map((s) => {
      const [name, as] = s.split(/\s+as\s+/)
      return { name: name!, as: as ?? name! }
    })

/** The public names of a module: name → where it is declared. */
const exportsOf = (file: string, seen = new Set<string>()): Map<string, Item> => {
  const result = new Map<string, Item>()
  if (seen.has(file)) return result
  seen.add(file)
  const stmts = read(file)
  const imports = new Map<string, { from: string; name: string }>()
  for (const s of stmts) {
    const m = /^import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"([^"]+)"/.exec(s.text)
    if (m) for (const { name, as } of specifiers(m[1]!)) imports.set(as, { from: m[2]!, name })
  }
  let stars = 0
  for (const s of stmts) {
    if (!s.exported) continue
    const star = /^export\s+\*\s+from\s+"([^"]+)"/.exec(s.text)
    const starAs = /^export\s+\*\s+as\s+(\w+)\s+from\s+"([^"]+)"/.exec(s.text)
    const named = /^export\s+(?:type\s+)?\{([^}]*)\}(?:\s+from\s+"([^"]+)")?/.exec(s.text)
    if (starAs) {
      const [, name, spec] = starAs
      result.set(name!, { kind: "namespace", name: name!, module: target(file, spec!) })
    } else if (star) {
      const spec = star[1]!
      if (spec.startsWith(".")) {
        for (const [name, item] of exportsOf(target(file, spec), seen)) result.set(name, item)
      } else {
        result.set(`* ${stars++}`, { kind: "externalStar", from: spec })
      }
    } else if (named) {
      const [, list, spec] = named
      for (const { name, as } of specifiers(list!)) {
        const source = spec ?? imports.get(name)?.from
        const original = spec === undefined ? (imports.get(name)?.name ?? name) : name
        if (source === undefined) {
          result.set(as, { kind: "local", name, module: file })
        } else if (source.startsWith(".")) {
          const item = exportsOf(target(file, source), new Set()).get(original)
          if (item === undefined)
            throw new Error(`${relative(root, file)}: ${original} not found in ${source}`)
          result.set(as, item)
        } else {
          result.set(as, { kind: "external", name: original, from: source, as })
        }
      }
    } else if (s.name !== undefined) {
      result.set(s.name, { kind: "local", name: s.name, module: file })
    }
  }
  return result
}

/** The declarations of `names` in `module`, plus the unexported helpers they mention (e.g. `X_base`). */
const declarationsIn = (module: string, names: ReadonlySet<string>): Array<string> => {
  const stmts = read(module)
  const chosen = stmts.filter((s) => s.name !== undefined && names.has(s.name) && s.exported)
  const texts = chosen.map((s) => s.text)
  const mentioned = (name: string) =>
    texts.some((t) => new RegExp(`\\b${name.replace(/\$/g, "\\$")}\\b`).test(t))
  const helpers = stmts.filter((s) => !s.exported && s.name !== undefined && mentioned(s.name))
  return stmts.filter((s) => chosen.includes(s) || helpers.includes(s)).map((s) => s.text)
}

const renderModule = (items: ReadonlyArray<Item>, packageDir: string, indent: string): Array<string> => {
  const lines: Array<string> = []
  const byModule = new Map<string, Set<string>>()
  const external = new Map<string, Array<string>>()
  for (const item of items) {
    if (item.kind === "local") {
      const set = byModule.get(item.module) ?? new Set<string>()
      set.add(item.name)
      byModule.set(item.module, set)
    } else if (item.kind === "external") {
      const list = external.get(item.from) ?? []
      list.push(item.name === item.as ? item.name : `${item.name} as ${item.as}`)
      external.set(item.from, list)
    } else if (item.kind === "externalStar") {
      lines.push(`${indent}export * from "${item.from}"`)
    }
  }
  for (const [from, names] of [...external].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${indent}export { ${names.sort().join(", ")} } from "${from}"`)
  }
  for (const [module, names] of byModule) {
    lines.push(
      "",
      `${indent}// ${relative(packageDir, module)
        .replace(/^dist\//, "")
        .replace(/\.d\.ts$/, ".ts")}`
    )
    for (const text of declarationsIn(module, names)) {
      lines.push(...text.split("\n").map((l) => indent + l))
    }
  }
  for (const item of items) {
    if (item.kind !== "namespace") continue
    lines.push("", `${indent}export namespace ${item.name} {`)
    lines.push(...renderModule([...exportsOf(item.module).values()], packageDir, `${indent}  `))
    lines.push(`${indent}}`)
  }
  return lines
}

export const generate = async (): Promise<ReadonlyArray<{ path: string; content: string }>> =>
  packages.map((name) => {
    const dir = join(root, "packages", name)
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      name: string
      exports: Record<string, null | string | { types?: string }>
    }
    const lines = [
      `# ${manifest.name}: public API`,
      "",
      "Generated by scripts/generators/apiReport.ts from the declarations the build emits; do not edit.",
      "Run `pnpm run build && pnpm generate` after a deliberate API change and review the diff.",
      "Doc comments are left out; they are in the sources and in the published .d.ts files."
    ]
    for (const [entry, value] of Object.entries(manifest.exports)) {
      if (value === null || typeof value === "string" || value.types === undefined) continue
      const specifier = entry === "." ? manifest.name : `${manifest.name}/${entry.slice(2)}`
      const items = [...exportsOf(join(dir, value.types)).values()]
      lines.push(
        "",
        `## ${specifier}`,
        "",
        "```ts",
        ...renderModule(items, dir, "").filter((l, i) => i > 0 || l !== ""),
        "```"
      )
    }
    return { path: `api/${name}.api.md`, content: `${lines.join("\n")}\n` }
  })
