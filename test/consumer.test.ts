/**
 * The packages as a user gets them: build, pack every publishable package (workspace: ranges
 * become versions), install the tarballs with plain npm into a fresh directory outside the
 * workspace, then run test/consumer/program.ts there as plain JavaScript (its types stripped) on
 * Node 22 and on Node 24, both from npm, and type-check the TypeScript original with tsc from npm.
 * The program starts @pgline/testing's embedded PostgreSQL and checks what the server computed;
 * the installed `pgline` command runs through npx against a server this test starts.
 *
 * Needs the npm registry (effect, typescript, the PostgreSQL binaries, node@22 through npx); npm's
 * cache makes later runs faster. One install serves both Node versions and the type-check.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer } from "@pgline/testing"
import { buildIfStale } from "../scripts/build.ts"
import { packAll } from "../scripts/pack.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..")
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>
}

/** The environment of a user's shell: none of the workspace's package-manager settings or conditions. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_)/i.test(key) || key === "NODE_OPTIONS" || key.startsWith("VITEST")) continue
    env[key] = value
  }
  return { ...env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" }
}

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (file: string, args: ReadonlyArray<string>, cwd: string, timeout: number): Promise<Run> =>
  new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { cwd, env: cleanEnv(), timeout, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolve({ code, stdout, stderr })
      }
    )
    child.stdin?.end()
  })

let project = ""
let installSeconds = 0

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "pgline-consumer-"))
  buildIfStale() // the test command has just built everything; a lone run of this file may not have
  const tarballs = packAll(join(project, "tarballs"))
  const dependencies: Record<string, string> = { effect: rootManifest.devDependencies.effect ?? "4.1.0" }
  for (const [name, tarball] of Object.entries(tarballs)) dependencies[name] = `file:${tarball}`
  writeFileSync(
    join(project, "package.json"),
    `${JSON.stringify(
      {
        name: "pgline-consumer",
        private: true,
        type: "module",
        dependencies,
        devDependencies: {
          typescript: rootManifest.devDependencies.typescript,
          "@types/node": "22"
        }
      },
      null,
      2
    )}\n`
  )
  const source = readFileSync(join(here, "consumer", "program.ts"), "utf8")
  writeFileSync(join(project, "program.ts"), source)
  writeFileSync(join(project, "program.js"), stripTypeScriptTypes(source, { mode: "strip" }))
  writeFileSync(
    join(project, "tsconfig.json"),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ["node"]
        },
        files: ["program.ts"]
      },
      null,
      2
    )}\n`
  )
  const started = performance.now()
  const install = await run(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
    project,
    600_000
  )
  installSeconds = (performance.now() - started) / 1000
  if (install.code !== 0) throw new Error(`npm install failed (${install.code}):\n${install.stderr}`)
}, 900_000)

afterAll(() => {
  if (project !== "") rmSync(project, { recursive: true, force: true })
})

/** Runs the program with `command` and returns its one JSON line, after checking the exit code. */
const runProgram = async (command: string, args: ReadonlyArray<string>): Promise<Record<string, unknown>> => {
  const result = await run(command, [...args, "program.js"], project, 300_000)
  if (result.code !== 0)
    throw new Error(`program exited with ${result.code}:\n${result.stdout}\n${result.stderr}`)
  const line = result.stdout.trim().split("\n").at(-1) ?? ""
  return JSON.parse(line) as Record<string, unknown>
}

const expectServerResults = (out: Record<string, unknown>) => {
  expect(out.sum).toBe("500500") // sum(1..1000), computed by the server as int8
  expect(out.picked).toBe("apple,plum")
  expect(out.product).toBe(42)
  expect(out.count).toBe("3")
  expect(out.missing).toBe("UndefinedTable 42P01")
  expect(out.duplicate).toBe("UniqueViolation 23505")
  expect(out.rowsAfterRollback).toBe("3")
  expect(out.effectSql).toBe("42 SqlSyntaxError 42P01")
}

describe("installed from the packed tarballs with npm", () => {
  it("installs the workspace packages from the tarballs, not from a registry", () => {
    const lock = JSON.parse(readFileSync(join(project, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; resolved?: string }>
    }
    for (const name of ["codec", "transport", "client", "sql", "cli", "testing"]) {
      const entry = lock.packages[`node_modules/@pgline/${name}`]
      expect(entry?.resolved, `@pgline/${name}`).toMatch(/^file:.*\.tgz$/)
    }
    const nested = Object.keys(lock.packages).filter((p) =>
      /node_modules\/@pgline\/.*node_modules\/@pgline\//.test(p)
    )
    expect(nested).toEqual([])
    const manifest = JSON.parse(
      readFileSync(join(project, "node_modules", "@pgline", "client", "package.json"), "utf8")
    ) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> }
    expect(manifest.dependencies["@pgline/transport"]).toMatch(/^\^?\d+\.\d+\.\d+$/)
    expect(manifest.peerDependencies.effect).toBeDefined()
    console.log(`npm install: ${installSeconds.toFixed(1)} s`)
  })

  it("runs on Node 22 from npm", async () => {
    // The `node` npm package at 22.x, through npx (its cache keeps it between runs).
    const out = await runProgram("npx", ["--yes", "-p", "node@22", "node"])
    expect(String(out.node)).toMatch(/^v22\./)
    expectServerResults(out)
  }, 360_000)

  it("runs on Node 24 from npm", async () => {
    // The workspace's own Node 24 (the `node` npm package of the root devDependencies).
    const out = await runProgram(process.execPath, [])
    expect(String(out.node)).toMatch(/^v24\./)
    expectServerResults(out)
  }, 180_000)

  it("runs the pgline command with npx from the installed @pgline/cli", async () => {
    const server = await startServer({})
    try {
      const url = `${server.info.url}?sslmode=disable`
      const result = await run(
        "npx",
        ["--no-install", "pgline", "-X", "-A", "-t", "-c", "select 40 + 2", url],
        project,
        120_000
      )
      expect(result).toEqual({ code: 0, stdout: "42\n", stderr: "" })
    } finally {
      await server.stop()
    }
  }, 180_000)

  it("type-checks the TypeScript program with tsc from npm, against the published declarations", async () => {
    const tsc = join(project, "node_modules", ".bin", "tsc")
    const result = await run(tsc, ["-p", "tsconfig.json"], project, 120_000)
    expect(`${result.stdout}${result.stderr}`).toBe("")
    expect(result.code).toBe(0)
  }, 180_000)
})
