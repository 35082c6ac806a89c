/**
 * The examples are part of the test command: the demo (examples/demo.ts, which starts one embedded
 * PostgreSQL and runs every example against it) must exit 0 and print what each example checked;
 * the README's quick start must be examples/00-quick-start.ts verbatim, so what a reader pastes is
 * what ran here.
 */
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const examples = readdirSync(join(root, "examples"))
  .filter((f) => f.endsWith(".ts") && f !== "demo.ts" && !f.startsWith("_"))
  .sort()

describe("examples", () => {
  it("the demo runs every example to completion", async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        const child = execFile(
          process.execPath,
          ["--conditions=@pgline/source", join(root, "examples", "demo.ts")],
          { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) =>
            resolve({
              code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
              stdout,
              stderr
            })
        )
        child.stdin?.end()
      }
    )
    expect(code, stderr).toBe(0)
    for (const file of examples) expect(stdout).toContain(`(${file})`)
    // What the examples computed against the server.
    expect(stdout).toContain("refused: users_name_key (23505)") // 00: UniqueViolation caught by tag
    expect(stdout).toContain("table now holds: (2, four)") // 01: the aborted segment rolled back
    expect(stdout).toContain("overdrawing #2: refused (CheckViolation)") // 02
    expect(stdout).toContain("20 concurrent POST /transfer: all 200") // 04
    expect(stdout).toContain("overdraft: 409") // 04: CheckViolation mapped to 409
    expect(stdout).toContain("balances: wallet 1 = 0, wallet 2 = 100") // 04
    expect(stdout).toContain("order 1: Green tea, Teapot, Cup; total 91") // 06: effect/sql on pgline
    expect(stdout).toContain('second "tea": UniqueViolation on products_pkey (pgline: UniqueViolation)') // 06
    expect(stdout).toContain("add_part takes OIDs 23, 25, 1700, returns id") // 07: described before running
    expect(stdout).toContain('queryValues: [["bolt","nut"]]') // 07: both columns named "name"
    expect(stdout).toContain("Done; the server is stopped")
  }, 300_000)

  it("the README's quick start is examples/00-quick-start.ts verbatim", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## Quick start"))
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
    expect(block).toBe(readFileSync(join(root, "examples", "00-quick-start.ts"), "utf8"))
  })
})
