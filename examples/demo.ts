/**
 * The demo: starts a private PostgreSQL (PgServer: embedded binaries unless PGLINE_TEST_URL or a
 * Docker daemon says otherwise), runs every example that exists against it, prints what each one
 * reports, and stops the server. Examples are the user stories of examples/*.ts; each exports
 * `run(server)` and `title`.
 */
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { NodeRuntime } from "@effect/platform-node"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect } from "effect"

interface Example {
  readonly title: string
  readonly run: (server: ServerInfo) => Effect.Effect<void, unknown>
}

const here = dirname(fileURLToPath(import.meta.url))
const loaded = performance.now()

const program = Effect.gen(function* () {
  const server = yield* PgServer
  yield* Console.log(
    `PostgreSQL ${server.version ?? "(version unknown)"} (${server.kind}) at ${server.host}:${server.port}, ` +
      `ready in ${Math.round(performance.now() - loaded)} ms; TLS ${server.ca ? "on" : "off"}`
  )
  const files = readdirSync(here)
    .filter((f) => f.endsWith(".ts") && f !== "demo.ts" && !f.startsWith("_"))
    .sort()
  if (files.length === 0)
    yield* Console.log("No examples yet: the server starts and stops, nothing else runs.")
  for (const file of files) {
    const example = (yield* Effect.promise(() => import(pathToFileURL(join(here, file)).href))) as Example
    yield* Console.log(`\n== ${example.title} (${file})`)
    yield* example.run(server)
  }
  yield* Console.log("\nDone; the server is stopped and its directory removed.")
})

NodeRuntime.runMain(program.pipe(Effect.provide(PgServer.layer)))
