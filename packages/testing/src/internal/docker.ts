/**
 * Docker detection and a testcontainers-backed server. Detection must cost well under a second
 * when there is no daemon (the common case on CI machines): it looks for the daemon's socket or
 * DOCKER_HOST and asks `/_ping` with a 500 ms deadline, never waiting on a missing daemon.
 * testcontainers is imported only once a daemon has answered (it is slow to load and needs Node 22+).
 */
import { existsSync } from "node:fs"
import { request } from "node:http"
import { generateCertificates } from "./certificates.ts"
import { type EmbeddedHandle, type Roles, roleSetup } from "./embedded.ts"

const ping = (options: { socketPath: string } | { host: string; port: number }, timeoutMs: number) =>
  new Promise<boolean>((resolve) => {
    const req = request({ ...options, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.once("timeout", () => {
      req.destroy()
      resolve(false)
    })
    req.once("error", () => resolve(false))
    req.end()
  })

/** True when a Docker daemon answers within `timeoutMs`. */
export const dockerAvailable = async (timeoutMs = 500): Promise<boolean> => {
  const host = process.env["DOCKER_HOST"]
  if (host?.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length)
    return existsSync(socketPath) && ping({ socketPath }, timeoutMs)
  }
  if (host?.startsWith("tcp://")) {
    const url = new URL(host.replace(/^tcp:/, "http:"))
    return ping({ host: url.hostname, port: Number(url.port || 2375) }, timeoutMs)
  }
  const socketPath = "/var/run/docker.sock"
  return existsSync(socketPath) && ping({ socketPath }, timeoutMs)
}

/**
 * Starts `postgres:<version>` with the same roles, pg_hba rules and TLS set-up as the embedded
 * server. The image's init hook installs the certificates, writes pg_hba.conf and creates the
 * roles before the real server starts.
 */
export const startDocker = async (version: number): Promise<EmbeddedHandle> => {
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
  const setup = roleSetup()
  const certs = await generateCertificates(setup.roles.cert.user)
  const init = [
    "#!/bin/bash",
    "set -euo pipefail",
    'install -m 600 /pgline/server.key "$PGDATA/server.key"',
    'install -m 644 /pgline/server.crt "$PGDATA/server.crt"',
    'install -m 644 /pgline/root.crt "$PGDATA/root.crt"',
    'cp /pgline/pg_hba.conf "$PGDATA/pg_hba.conf"',
    "cat >> \"$PGDATA/postgresql.conf\" <<'CONF'",
    "ssl = on",
    "ssl_cert_file = 'server.crt'",
    "ssl_key_file = 'server.key'",
    "ssl_ca_file = 'root.crt'",
    "CONF",
    'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -f /pgline/roles.sql',
    ""
  ].join("\n")
  const container = await new PostgreSqlContainer(`postgres:${version}`)
    .withUsername("postgres")
    .withPassword(setup.roles.superuser.password)
    .withDatabase("postgres")
    .withCopyContentToContainer([
      { content: certs.serverKey, target: "/pgline/server.key", mode: 0o644 },
      { content: certs.serverCert, target: "/pgline/server.crt", mode: 0o644 },
      { content: certs.ca, target: "/pgline/root.crt", mode: 0o644 },
      { content: setup.hba(true), target: "/pgline/pg_hba.conf", mode: 0o644 },
      { content: setup.sql.join("\n"), target: "/pgline/roles.sql", mode: 0o644 },
      { content: init, target: "/docker-entrypoint-initdb.d/10-pgline.sh", mode: 0o755 }
    ])
    .start()
  const host = container.getHost()
  const port = container.getPort()
  const roles: Roles = setup.roles
  let stopping: Promise<void> | undefined
  return {
    info: {
      kind: "docker",
      url: `postgres://postgres:${encodeURIComponent(roles.superuser.password)}@${host}:${port}/postgres`,
      host,
      port,
      database: "postgres",
      user: "postgres",
      password: roles.superuser.password,
      socketDir: undefined,
      ca: certs.ca,
      clientCert: certs.clientCert,
      clientKey: certs.clientKey,
      roles,
      version
    },
    dataDir: "",
    pid: -1,
    stop: () => {
      stopping ??= container.stop().then(() => undefined)
      return stopping
    },
    log: () => ""
  }
}
