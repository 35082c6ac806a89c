/**
 * TLS settings that need a server of their own: a server certificate from a CA of this file
 * (made with the openssl command line, which can also revoke it), with no ssl_ca_file so that the
 * server never asks for a client certificate. sslcrl and sslcrldir holding the revocation refuse
 * the server; sslcertmode=require refuses a server that did not ask for a certificate.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { PgServer } from "../../testing/src/index.ts"
import { unprivileged } from "../../testing/src/internal/embedded.ts"
import { openSession, query } from "./support/session.ts"

/** The openssl command, installed from Debian's packages when missing and we are root. */
const ensureOpenssl = (): void => {
  if (spawnSync("openssl", ["version"]).status === 0) return
  if (typeof process.getuid !== "function" || process.getuid() !== 0)
    throw new Error("the openssl command is missing and installing it needs root: apt-get install openssl")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", "openssl"]]) {
    const r = spawnSync("apt-get", args, { env, encoding: "utf8", timeout: 300_000 })
    if (r.status !== 0)
      throw new Error(`apt-get ${args.join(" ")}: ${(r.stderr || String(r.error)).slice(-2000)}`)
  }
}

const openssl = (dir: string, ...args: ReadonlyArray<string>) => {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.error?.message ?? r.stderr}`)
}

/** CA, a server certificate for localhost, and a CRL of that CA revoking it, in a fresh directory. */
const makeCertificates = (): string => {
  ensureOpenssl()
  const dir = mkdtempSync(join(tmpdir(), "pgline-crl-"))
  // The server may run unprivileged (tests as root start it as nobody): it must reach its files.
  chmodSync(dir, 0o755)
  const ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
  openssl(dir, "genpkey", ...ec, "-out", "ca.key")
  openssl(
    dir,
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=pgline CRL test CA",
    "-days",
    "2",
    "-out",
    "ca.crt"
  )
  openssl(dir, "genpkey", ...ec, "-out", "server.key")
  openssl(dir, "req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
  writeFileSync(
    join(dir, "ext.cnf"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
  )
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    "0x1001",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-out",
    "server.crt"
  )
  writeFileSync(join(dir, "index.txt"), "")
  writeFileSync(join(dir, "crlnumber"), "01\n")
  writeFileSync(
    join(dir, "ca.cnf"),
    `[ca]\ndefault_ca = test\n[test]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n`
  )
  const ca = ["-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt"]
  openssl(dir, "ca", ...ca, "-revoke", "server.crt")
  openssl(dir, "ca", ...ca, "-gencrl", "-out", "crl.pem")
  mkdirSync(join(dir, "crl.d"))
  copyFileSync(join(dir, "crl.pem"), join(dir, "crl.d", "revoked.pem"))
  const user = unprivileged()
  if (user !== undefined) {
    for (const f of ["server.crt", "server.key"]) chownSync(join(dir, f), user.uid, user.gid)
  }
  chmodSync(join(dir, "server.key"), 0o600)
  return dir
}

/** The certificates' directory, made when the layer starts and removed when it ends. */
let certDir = ""

const Server = Layer.unwrap(
  Effect.map(
    Effect.acquireRelease(Effect.sync(makeCertificates), (dir) =>
      Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => {
      certDir = dir
      return PgServer.layerWith({
        settings: {
          ssl: "on",
          ssl_cert_file: join(dir, "server.crt"),
          ssl_key_file: join(dir, "server.key"),
          ssl_ca_file: ""
        }
      })
    }
  )
)

layer(Server, { timeout: 120_000, excludeTestServices: true })("TLS against a server of our own CA", (it) => {
  const url = (extra: string) =>
    Effect.map(
      PgServer,
      (info) => `postgresql://${info.user}@localhost:${info.port}/${info.database}?${extra}`
    )

  it.effect("sslcrl and sslcrldir refuse a revoked server certificate", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = certDir
        const verify = `sslmode=verify-full&sslrootcert=${encodeURIComponent(join(dir, "ca.crt"))}`
        // Without a revocation list the chain verifies.
        const s = yield* openSession(yield* url(verify))
        expect((yield* query(s, "select ssl from pg_stat_ssl where pid = pg_backend_pid()")).rows).toEqual([
          ["t"]
        ])
        for (const crl of [`sslcrl=${join(dir, "crl.pem")}`, `sslcrldir=${join(dir, "crl.d")}`]) {
          const refused = yield* Effect.flip(openSession(yield* url(`${verify}&${crl}`)))
          expect(refused, crl).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
          expect(refused.message, crl).toContain("revoked")
        }
        // A named revocation list that does not exist is an error, not a check skipped.
        const missing = yield* Effect.flip(
          openSession(yield* url(`${verify}&sslcrl=${join(dir, "nope.pem")}`))
        )
        expect(missing).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
        expect(missing.message).toContain("does not exist")
        // A directory holding no list cannot check the chain: refused (as libpq), not unchecked.
        const empty = mkdtempSync(join(tmpdir(), "pgline-crl-empty-"))
        const none = yield* Effect.flip(openSession(yield* url(`${verify}&sslcrldir=${empty}`)))
        expect(none).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
        expect(none.message).toContain("no PEM certificate revocation list")
        // With the system's roots no revocation list is read (as libpq): the chain fails on its CA.
        const system = yield* Effect.flip(
          openSession(yield* url(`sslmode=verify-full&sslrootcert=system&sslcrldir=${empty}`))
        )
        expect(system).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
        expect(system.message).not.toContain("revocation list")
        rmSync(empty, { recursive: true, force: true })
      })
    )
  )

  it.effect("sslcertmode=require refuses a server that did not ask for a client certificate", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const verify = { sslmode: "verify-full", sslrootcert: join(certDir, "ca.crt") } as const
        const refused = yield* Effect.flip(
          openSession({ url: yield* url(""), ...verify, sslcertmode: "require" })
        )
        expect(refused).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
        expect(refused.message).toContain("server did not request an SSL certificate")
        // allow (the default) connects to the same server.
        const allowed = yield* openSession({ url: yield* url(""), ...verify, sslcertmode: "allow" })
        expect(allowed.tls).toBe(true)
      })
    )
  )
})
