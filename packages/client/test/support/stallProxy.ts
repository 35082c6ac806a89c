/**
 * A TCP relay in front of the test server that can stall: in "stall" mode it accepts new
 * connections and answers nothing (a frozen host, or a load balancer in front of a dead one),
 * keeping what they send; `release(i)` lets the i-th stalled one through (what it sent first
 * included), `cut()` drops every open connection. Closed with the test's scope.
 */
import * as net from "node:net"
import { PgServer } from "@pgline/testing"
import { Effect, type Scope } from "effect"

export interface StallProxy {
  /** The test server's URL through the relay. */
  readonly url: string
  readonly setMode: (mode: "forward" | "stall") => void
  /** Stalled connections still open, not yet released. */
  readonly stalled: () => number
  /** Lets the i-th stalled connection (in accept order) through to the server. */
  readonly release: (i?: number) => void
  readonly cut: () => void
}

export const stallProxy: Effect.Effect<StallProxy, never, PgServer | Scope.Scope> = Effect.gen(function* () {
  const info = yield* PgServer
  const target = new URL(info.url)
  const sockets = new Set<net.Socket>()
  let mode: "forward" | "stall" = "forward"
  const held: Array<{ readonly client: net.Socket; readonly go: () => void }> = []
  const forward = (client: net.Socket, first: ReadonlyArray<Buffer>) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    sockets.add(upstream)
    upstream.on("error", () => {})
    for (const chunk of first) upstream.write(chunk)
    client.pipe(upstream)
    upstream.pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(upstream)
    }
    client.on("close", end)
    upstream.on("close", end)
  }
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on("error", () => {})
    client.on("close", () => sockets.delete(client))
    if (mode === "forward") return forward(client, [])
    const first: Array<Buffer> = []
    const keep = (chunk: Buffer) => first.push(chunk)
    client.on("data", keep)
    held.push({
      client,
      go: () => {
        client.off("data", keep)
        forward(client, first)
      }
    })
  })
  yield* Effect.acquireRelease(
    Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))),
    () =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy()
            server.close(() => resolve())
          })
      )
  )
  const url = new URL(info.url)
  url.hostname = "127.0.0.1"
  url.port = String((server.address() as net.AddressInfo).port)
  const open = () => held.filter((h) => !h.client.destroyed)
  return {
    url: url.toString(),
    setMode: (m) => {
      mode = m
    },
    stalled: () => open().length,
    release: (i = 0) => {
      const h = open()[i]!
      held.splice(held.indexOf(h), 1)
      h.go()
    },
    cut: () => {
      for (const s of sockets) s.destroy()
      sockets.clear()
    }
  }
})
