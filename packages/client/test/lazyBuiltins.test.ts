import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// The builtins Node has loaded in a fresh process after importing the given module (its
// `process.moduleLoadList` entries for node:tls and node:crypto).
const loadedAfterImport = (specifier: string): Array<string> => {
  const out = execFileSync(
    process.execPath,
    [
      "--conditions=@pgline/source",
      "--input-type=module",
      "-e",
      `await import(${JSON.stringify(specifier)});
       const seen = process.moduleLoadList.filter((m) => /^NativeModule (tls|crypto)$/.test(m));
       console.log(JSON.stringify(seen))`
    ],
    { cwd: fileURLToPath(new URL("..", import.meta.url)), encoding: "utf8" }
  )
  return JSON.parse(out.trim().split("\n").at(-1)!)
}

describe("importing pgline", () => {
  it("does not load node:tls or node:crypto: they are loaded at the first TLS connection or password hash", () => {
    expect(loadedAfterImport("@pgline/client")).toEqual([])
  })

  it("the check sees a module that loads them (node:tls loads both)", () => {
    expect(loadedAfterImport("node:tls")).toEqual(
      expect.arrayContaining(["NativeModule tls", "NativeModule crypto"])
    )
  })
})
