/**
 * Docker detection must answer "no" quickly when no daemon is there (CI machines), whether the
 * socket is missing or something listens on it without answering.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, expect, it } from "vitest"
import { dockerAvailable } from "../src/internal/docker.ts"

let saved: string | undefined
let dir: string
beforeEach(() => {
  saved = process.env["DOCKER_HOST"]
  dir = mkdtempSync(join(tmpdir(), "pgline-docker-"))
})
afterEach(() => {
  if (saved === undefined) delete process.env["DOCKER_HOST"]
  else process.env["DOCKER_HOST"] = saved
  rmSync(dir, { recursive: true, force: true })
})

it("reports no daemon when DOCKER_HOST names a socket that does not exist", async () => {
  process.env["DOCKER_HOST"] = `unix://${join(dir, "missing.sock")}`
  expect(await dockerAvailable()).toBe(false)
})

it("reports no daemon when the socket accepts but never answers (bounded by the deadline)", async () => {
  const path = join(dir, "stall.sock")
  const server = createServer(() => {
    // Accept and say nothing: a hung daemon.
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  process.env["DOCKER_HOST"] = `unix://${path}`
  try {
    expect(await dockerAvailable(200)).toBe(false)
  } finally {
    server.close()
  }
})

it("reports a daemon when the socket answers /_ping with 200", async () => {
  const path = join(dir, "ok.sock")
  const { createServer: createHttpServer } = await import("node:http")
  const server = createHttpServer((req, res) => {
    res.statusCode = req.url === "/_ping" ? 200 : 404
    res.end("OK")
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  process.env["DOCKER_HOST"] = `unix://${path}`
  try {
    expect(await dockerAvailable()).toBe(true)
  } finally {
    server.close()
  }
})
