/**
 * LatencyProxy in front of a real PostgreSQL (PgServer): measureRtt through the proxy never beats
 * 2 × delay, a real client (node-postgres) connects and queries through it (TLS included, since
 * the proxy only moves bytes), and `pgServerThrough` swaps the PgServer in context for the proxied
 * one.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import pg from "pg"
import { LatencyProxy, measureRtt, PgServer } from "../src/index.ts"

const query = (config: pg.ClientConfig, text: string) =>
  Effect.promise(async () => {
    const client = new pg.Client(config)
    await client.connect()
    try {
      return (await client.query(text)).rows[0] as Record<string, unknown>
    } finally {
      await client.end()
    }
  })

layer(PgServer.layer, { timeout: 120_000 })("LatencyProxy against PgServer", (it) => {
  it.effect("measureRtt through a 0.5 ms and a 2 ms proxy is at least 1 ms and 4 ms", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const direct = yield* Effect.promise(() => measureRtt(info.host, info.port, 10))
      expect(direct.samples).toHaveLength(10)
      expect(direct.minMs).toBeGreaterThan(0)
      for (const delayMs of [0.5, 2]) {
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs })
        const rtt = yield* Effect.promise(() => measureRtt(proxy.host, proxy.port, 20))
        expect(rtt.samples).toHaveLength(20)
        expect(rtt.minMs).toBeGreaterThanOrEqual(2 * delayMs)
        expect(rtt.minMs).toBeLessThanOrEqual(rtt.medianMs)
        expect(rtt.medianMs).toBeLessThanOrEqual(rtt.maxMs)
        expect(proxy.stats().totalConnections).toBe(20)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("a real client queries through the proxy, over TLS too", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 1 })
      const row = yield* query({ connectionString: proxy.url(info.url) }, "select 1 + 1 as two")
      expect(row["two"]).toBe(2)
      if (info.ca !== undefined) {
        const tls = yield* query(
          {
            host: proxy.host,
            port: proxy.port,
            user: info.user,
            password: info.password,
            database: info.database,
            ssl: { ca: info.ca, servername: "localhost" }
          },
          "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
        )
        expect(tls["ssl"]).toBe(true)
      }
      const stats = proxy.stats()
      expect(stats.bytesToTarget).toBeGreaterThan(0)
      expect(stats.bytesFromTarget).toBeGreaterThan(0)
    }).pipe(Effect.scoped)
  )

  describe("pgServerThrough", () => {
    it.effect("provides a PgServer whose host, port and url lead through the proxy", () =>
      Effect.gen(function* () {
        const direct = yield* PgServer
        const { proxied, proxy } = yield* Effect.gen(function* () {
          return { proxied: yield* PgServer, proxy: yield* LatencyProxy }
        }).pipe(
          Effect.provide(LatencyProxy.pgServerThrough(2).pipe(Layer.provide(Layer.succeed(PgServer, direct))))
        )
        expect(proxied.port).toBe(proxy.port)
        expect(proxied.port).not.toBe(direct.port)
        expect(proxied.socketDir).toBeUndefined()
        expect(proxied.url).toBe(proxy.url(direct.url))
        // The layer's scope ended with Effect.provide: the proxy is closed again.
        const refused = yield* Effect.promise(() =>
          measureRtt(proxied.host, proxied.port, 1).then(
            () => "answered",
            (e: NodeJS.ErrnoException) => e.code
          )
        )
        expect(refused).toBe("ECONNREFUSED")
      })
    )

    it.effect("queries through it take at least one 4 ms round trip", () =>
      Effect.gen(function* () {
        const direct = yield* PgServer
        yield* Effect.gen(function* () {
          const proxied = yield* PgServer
          const t0 = performance.now()
          const row = yield* query({ connectionString: proxied.url }, "select 42 as answer")
          expect(row["answer"]).toBe(42)
          // Startup, auth and one query: several round trips, so well above one 4 ms RTT.
          expect(performance.now() - t0).toBeGreaterThanOrEqual(4)
        }).pipe(
          Effect.provide(LatencyProxy.pgServerThrough(2).pipe(Layer.provide(Layer.succeed(PgServer, direct))))
        )
      })
    )
  })
})
